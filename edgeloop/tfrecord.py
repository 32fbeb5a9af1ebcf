"""`tf.train.Example` and gzip TFRecord files without TensorFlow (what keys they hold: `edgeloop.examples`).

Ingest's workers never import TensorFlow: `import tensorflow` (even for `example_pb2`, whose
package `__init__` pulls in all of TF) costs ~15 s and ~800 MB per process, more
than encoding thousands of photos. The Example wire format is tiny and frozen, so
it is written here by hand (`encode_example`) and read back (`decode_example`); a
test checks both against TensorFlow's own parser.

    message Example   { Features features = 1; }
    message Features  { map<string, Feature> feature = 1; }
    message Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    message BytesList { repeated bytes value = 1; }
    message FloatList { repeated float value = 1 [packed = true]; }
    message Int64List { repeated int64 value = 1 [packed = true]; }

TFRecord framing: `uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)`,
little-endian, then the whole file gzip-compressed.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import IO

from edgeloop import storage
from edgeloop.errors import EdgeloopError, MissingExtra

FeatureValue = bytes | str | int | float | Sequence[bytes] | Sequence[str] | Sequence[int] | Sequence[float]
Decoded = list[bytes] | list[int] | list[float]

# JPEG payloads gain ~1% from deflate at any level; level 1 costs a third of level 6's CPU.
GZIP_LEVEL = 1

_MASK_DELTA = 0xA282EAD8


class RecordError(EdgeloopError):
    """A TFRecord file or an Example inside it is malformed."""


# --------------------------------------------------------------------------- protobuf wire format


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 negatives are ten-byte two's complement on the wire
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value: FeatureValue) -> bytes:
    items: Sequence[object] = value if isinstance(value, list | tuple) else [value]
    texts = [v.encode("utf-8") if isinstance(v, str) else v for v in items if isinstance(v, bytes | str)]
    if len(texts) == len(items):
        return _field(1, b"".join(_field(1, v) for v in texts))
    ints = [v for v in items if isinstance(v, int) and not isinstance(v, bool)]
    if len(ints) == len(items):
        return _field(3, _field(1, b"".join(_varint(v) for v in ints)))
    numbers = [float(v) for v in items if isinstance(v, float | int) and not isinstance(v, bool)]
    if len(numbers) == len(items):
        return _field(2, _field(1, struct.pack(f"<{len(numbers)}f", *numbers)))
    raise TypeError(f"feature value {value!r} is not bytes/str, int or float (or a list of one kind)")


def encode_example(features: Mapping[str, FeatureValue]) -> bytes:
    """Serialize a `tf.train.Example`; keys are written sorted, so equal input gives equal bytes."""
    body = b"".join(
        _field(1, _field(1, key.encode("utf-8")) + _field(2, _feature(features[key]))) for key in sorted(features)
    )
    return _field(1, body)


def _read_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise RecordError("truncated varint in Example")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise RecordError("varint longer than 64 bits in Example")


def _fields(data: bytes | memoryview) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, payload) for each field of one message."""
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        key, pos = _read_varint(view, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(view, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _read_varint(view, pos)
            if pos + length > len(view):
                raise RecordError("length-delimited field runs past the end of the Example")
            yield number, wire, bytes(view[pos : pos + length])
            pos += length
        elif wire == 5:
            yield number, wire, bytes(view[pos : pos + 4])
            pos += 4
        elif wire == 1:
            yield number, wire, bytes(view[pos : pos + 8])
            pos += 8
        else:
            raise RecordError(f"unsupported wire type {wire} in Example")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_feature(data: bytes) -> Decoded:
    for kind, _, payload in _fields(data):
        if not isinstance(payload, bytes):
            continue
        if kind == 1:
            return [v for n, _, v in _fields(payload) if n == 1 and isinstance(v, bytes)]
        if kind == 2:
            floats: list[float] = []
            for n, _, v in _fields(payload):
                if n == 1 and isinstance(v, bytes):  # packed, or one unpacked fixed32
                    floats.extend(struct.unpack(f"<{len(v) // 4}f", v))
            return floats
        if kind == 3:
            ints: list[int] = []
            for n, wire, v in _fields(payload):
                if n != 1:
                    continue
                if wire == 0 and isinstance(v, int):  # unpacked encoding, also legal
                    ints.append(_signed(v))
                elif isinstance(v, bytes):
                    pos = 0
                    while pos < len(v):
                        raw, pos = _read_varint(v, pos)
                        ints.append(_signed(raw))
            return ints
    return []


def decode_example(data: bytes) -> dict[str, Decoded]:
    """Parse a serialized `tf.train.Example` into `{key: [values]}`."""
    out: dict[str, Decoded] = {}
    for number, _, features in _fields(data):
        if number != 1 or not isinstance(features, bytes):
            continue
        for entry_number, _, entry in _fields(features):
            if entry_number != 1 or not isinstance(entry, bytes):
                continue
            key, value = "", b""
            for n, _, v in _fields(entry):
                if n == 1 and isinstance(v, bytes):
                    key = v.decode("utf-8")
                elif n == 2 and isinstance(v, bytes):
                    value = v
            out[key] = _decode_feature(value)
    return out


# --------------------------------------------------------------------------- TFRecord framing


def _crc32c(data: bytes) -> int:
    try:
        import google_crc32c
    except ImportError:
        raise MissingExtra("google-crc32c", "pipelines") from None
    return int(google_crc32c.value(data))


def _masked_crc(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """One TFRecord: length, its CRC, the data, its CRC."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked_crc(length)) + data + struct.pack("<I", _masked_crc(data))


def iter_records(stream: IO[bytes], *, name: str = "<stream>") -> Iterator[bytes]:
    """The records of an uncompressed TFRecord stream, CRCs checked."""
    index = 0
    while True:
        header = stream.read(12)
        if not header:
            return
        if len(header) < 12:
            raise RecordError(f"{name}: record {index} has a truncated header")
        length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
        if _masked_crc(length_bytes) != length_crc:
            raise RecordError(f"{name}: record {index} has a corrupt length")
        (length,) = struct.unpack("<Q", length_bytes)
        data = stream.read(length)
        footer = stream.read(4)
        if len(data) < length or len(footer) < 4:
            raise RecordError(f"{name}: record {index} is truncated")
        if _masked_crc(data) != struct.unpack("<I", footer)[0]:
            raise RecordError(f"{name}: record {index} fails its CRC check")
        yield data
        index += 1


class TFRecordWriter:
    """A gzip TFRecord file written through `edgeloop.storage`; the object appears on close.

    Deterministic: the gzip header carries no time or name, so equal records give equal bytes
    (a retried Beam bundle rewrites a shard identically).
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.records = 0
        self.bytes = 0  # compressed size, known after close
        self._cm = storage.open_write(uri)
        self._raw: IO[bytes] | None = None
        self._gz: gzip.GzipFile | None = None

    def __enter__(self) -> TFRecordWriter:
        self._raw = self._cm.__enter__()
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=GZIP_LEVEL, mtime=0)
        return self

    def write(self, record: bytes) -> None:
        if self._gz is None:
            raise RuntimeError("TFRecordWriter used outside its `with` block")
        self._gz.write(frame_record(record))
        self.records += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._gz is not None and self._raw is not None:
            self._gz.close()  # flushes the gzip trailer into the storage handle (and leaves it open)
            self.bytes = self._raw.tell()
        self._cm.__exit__(exc_type, exc, tb)


def read_tfrecords(uri: str) -> Iterator[bytes]:
    """Every record of a gzip TFRecord file at `uri`."""
    with storage.open_read(uri) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:
        yield from iter_records(gz, name=uri)  # type: ignore[arg-type]


__all__ = [
    "GZIP_LEVEL",
    "RecordError",
    "TFRecordWriter",
    "decode_example",
    "encode_example",
    "frame_record",
    "iter_records",
    "read_tfrecords",
]
