"""Repack a finished TFLite file smaller: one copy of each repeated quantization vector, aligned buffers.

A per-channel int8 MobileNetV2 carries a (scale, zero point) pair per output channel of every
tensor, and the schema stores zero points as int64: at 224 px that is 34,189 zero points,
273 kB of zeros, 3 % of the float32 file (issue 19). The flatbuffer format lets any number of
tables point at one vector, so every tensor with the same zero points (or min/max/scales)
points at one stored copy; LiteRT reads them through the same offsets as before, so the
interpreter sees the same numbers and computes bit-identical outputs.

Also: MediaPipe's metadata populator re-serializes the model with the object API, which drops
the 16-byte alignment the converter gives constant buffers (`force_align: 16` in the schema);
this writer puts it back. Associated files (the ZIP MediaPipe appends with labels.txt and
edgeloop.json, offsets absolute from the file's start) are rewritten after the new flatbuffer
with their names, dates and (stored) compression unchanged.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import flatbuffers
import numpy as np

BUFFER_ALIGNMENT = 16
_TFLITE_IDENTIFIER = b"TFL3"
_QUANT_VECTORS = ("min", "max", "scale", "zeroPoint")


def _split(data: bytes) -> tuple[bytes, list[tuple[zipfile.ZipInfo, bytes]]]:
    """The flatbuffer and the associated files appended after it (none when there is no ZIP)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = [(info, archive.read(info)) for info in archive.infolist()]
    except zipfile.BadZipFile:
        return data, []
    if not entries:
        return data, []
    return data[: min(info.header_offset for info, _ in entries)], entries


def _join(flatbuffer: bytes, entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    if not entries:
        return flatbuffer
    out = io.BytesIO(flatbuffer)
    out.seek(0, io.SEEK_END)
    # Mode "a" on a non-ZIP appends the archive with offsets from the file's start, as MediaPipe does.
    with zipfile.ZipFile(out, "a") as archive:
        for info, content in entries:
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.compress_type, copy.external_attr, copy.comment = info.compress_type, info.external_attr, info.comment
            archive.writestr(copy, content)
    return out.getvalue()


class _Packer:
    """Packs QuantizationParameters and Buffer tables, reusing vectors already written."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self.vectors: dict[tuple[str, bytes], int] = {}

    def vector(self, builder: flatbuffers.Builder, values: Any, dtype: str) -> int:
        array = np.ascontiguousarray(values, dtype=dtype)
        key = (array.dtype.str, array.tobytes())
        if key not in self.vectors:
            self.vectors[key] = builder.CreateNumpyVector(array)
        return self.vectors[key]

    def quantization(self, q: Any, builder: flatbuffers.Builder) -> int:
        s = self.schema
        dtypes = {"min": "<f4", "max": "<f4", "scale": "<f4", "zeroPoint": "<i8"}
        vectors = {
            n: self.vector(builder, getattr(q, n), dtypes[n]) for n in _QUANT_VECTORS if getattr(q, n) is not None
        }
        details = q.details.Pack(builder) if q.details is not None else None
        s.QuantizationParametersStart(builder)
        adders = {
            "min": s.QuantizationParametersAddMin,
            "max": s.QuantizationParametersAddMax,
            "scale": s.QuantizationParametersAddScale,
            "zeroPoint": s.QuantizationParametersAddZeroPoint,
        }
        for name, offset in vectors.items():
            adders[name](builder, offset)
        s.QuantizationParametersAddDetailsType(builder, q.detailsType)
        if details is not None:
            s.QuantizationParametersAddDetails(builder, details)
        s.QuantizationParametersAddQuantizedDimension(builder, q.quantizedDimension)
        return int(s.QuantizationParametersEnd(builder))

    def buffer(self, b: Any, builder: flatbuffers.Builder) -> int:
        s = self.schema
        data = None
        if b.data is not None:
            payload = np.asarray(b.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), BUFFER_ALIGNMENT)
            builder.head -= len(payload)
            builder.Bytes[builder.head : builder.head + len(payload)] = payload
            data = builder.EndVector()
        s.BufferStart(builder)
        if data is not None:
            s.BufferAddData(builder, data)
        s.BufferAddOffset(builder, b.offset)
        s.BufferAddSize(builder, b.size)
        return int(s.BufferEnd(builder))


def compact(data: bytes) -> bytes:
    """`data` (a TFLite file, associated files included) with shared quantization vectors and aligned buffers.

    Files whose buffers live outside the flatbuffer (the converter's layout above 2 GB) are returned unchanged.
    """
    from ai_edge_litert import schema_py_generated as schema

    flat, entries = _split(data)
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(flat, 0))
    if any(b.offset > 1 for b in model.buffers or []):
        return data
    packer = _Packer(schema)

    # The object API packs every table through its own Pack; these two route through the packer.
    class Quantization(schema.QuantizationParametersT):  # type: ignore[misc]
        def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 (the object API's name)
            return packer.quantization(self, builder)

    class Buffer(schema.BufferT):  # type: ignore[misc]
        def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802
            return packer.buffer(self, builder)

    for graph in model.subgraphs or []:
        for tensor in graph.tensors or []:
            if tensor.quantization is not None:
                tensor.quantization.__class__ = Quantization
    for b in model.buffers or []:
        b.__class__ = Buffer
    builder = flatbuffers.Builder(len(flat))
    builder.Finish(model.Pack(builder), file_identifier=_TFLITE_IDENTIFIER)
    return _join(bytes(builder.Output()), entries)
