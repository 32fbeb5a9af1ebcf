"""TF-free Example encoding and gzip TFRecord files; one test checks both against TensorFlow."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from edgeloop.tfrecord import (
    RecordError,
    TFRecordWriter,
    decode_example,
    encode_example,
    frame_record,
    iter_records,
    read_tfrecords,
)

FEATURES = {
    "image/encoded": b"\xff\xd8\xff\x00jpeg-bytes",
    "image/format": b"jpeg",
    "image/height": 480,
    "image/width": 640,
    "image/class/label": 7,
    "image/class/text": "lavender-soap",
    "image/sha256": "ab" * 32,
    "image/source": "gs://photos/lavender-soap/0001.jpg",
}


def test_example_round_trip() -> None:
    decoded = decode_example(encode_example(FEATURES))
    assert decoded["image/encoded"] == [FEATURES["image/encoded"]]
    assert decoded["image/height"] == [480] and decoded["image/class/label"] == [7]
    assert decoded["image/class/text"] == [b"lavender-soap"]
    assert set(decoded) == set(FEATURES)


def test_example_value_kinds() -> None:
    raw = encode_example({"ints": [-1, 0, 2**40], "floats": [0.5, -2.0], "strs": ["a", "bé"], "empty_bytes": b""})
    decoded = decode_example(raw)
    assert decoded["ints"] == [-1, 0, 2**40]
    assert decoded["floats"] == [0.5, -2.0]
    assert decoded["strs"] == [b"a", "bé".encode()]
    assert decoded["empty_bytes"] == [b""]
    with pytest.raises(TypeError, match="not bytes/str, int or float"):
        encode_example({"bad": [object()]})  # type: ignore[list-item]


def test_encoding_is_deterministic_whatever_the_key_order() -> None:
    assert encode_example(dict(reversed(list(FEATURES.items())))) == encode_example(FEATURES)


def test_tfrecord_framing_round_trip_and_crc_check() -> None:
    records = [b"", b"one", bytes(range(256)) * 40]
    stream = b"".join(frame_record(r) for r in records)
    assert list(iter_records(io.BytesIO(stream))) == records
    corrupt = bytearray(stream)
    corrupt[-10] ^= 0xFF
    with pytest.raises(RecordError, match="CRC"):
        list(iter_records(io.BytesIO(bytes(corrupt))))
    with pytest.raises(RecordError, match="truncated"):
        list(iter_records(io.BytesIO(stream[:-3])))


def test_writer_writes_a_deterministic_gzip_file(tmp_path: Path) -> None:
    uris = [str(tmp_path / "a" / "x.tfrecord.gz"), str(tmp_path / "b" / "x.tfrecord.gz")]
    for uri in uris:
        with TFRecordWriter(uri) as writer:
            writer.write(encode_example(FEATURES))
            writer.write(b"second")
        assert writer.records == 2 and writer.bytes == Path(uri).stat().st_size
    assert Path(uris[0]).read_bytes() == Path(uris[1]).read_bytes()  # no timestamp in the gzip header
    assert gzip.decompress(Path(uris[0]).read_bytes()).startswith(frame_record(encode_example(FEATURES))[:12])
    assert list(read_tfrecords(uris[0]))[1] == b"second"


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    uri = str(tmp_path / "x.tfrecord.gz")
    with pytest.raises(RuntimeError, match="boom"), TFRecordWriter(uri) as writer:
        writer.write(b"one")
        raise RuntimeError("boom")
    assert not Path(uri).exists()


@pytest.mark.tf
@pytest.mark.slow
def test_tensorflow_reads_our_records_and_we_read_its(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    uri = str(tmp_path / "x.tfrecord.gz")
    with TFRecordWriter(uri) as writer:
        writer.write(encode_example(FEATURES))
    (raw,) = list(tf.data.TFRecordDataset([uri], compression_type="GZIP").as_numpy_iterator())
    parsed = tf.io.parse_single_example(
        raw,
        {
            "image/encoded": tf.io.FixedLenFeature([], tf.string),
            "image/height": tf.io.FixedLenFeature([], tf.int64),
            "image/class/label": tf.io.FixedLenFeature([], tf.int64),
            "image/class/text": tf.io.FixedLenFeature([], tf.string),
        },
    )
    assert parsed["image/encoded"].numpy() == FEATURES["image/encoded"]
    assert int(parsed["image/height"]) == 480 and int(parsed["image/class/label"]) == 7
    theirs = tf.train.Example(
        features=tf.train.Features(
            feature={
                "n": tf.train.Feature(int64_list=tf.train.Int64List(value=[-5, 3])),
                "f": tf.train.Feature(float_list=tf.train.FloatList(value=[1.5])),
                "b": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x", b"y"])),
            }
        )
    ).SerializeToString()
    assert decode_example(theirs) == {"n": [-5, 3], "f": [1.5], "b": [b"x", b"y"]}
    assert tf.train.Example.FromString(encode_example({"n": [-5, 3]})).features.feature["n"].int64_list.value == [-5, 3]
