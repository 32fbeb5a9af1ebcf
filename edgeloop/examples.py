"""The Examples contract: what one `tf.train.Example` of a dataset holds, how it is written and read.

Ingest writes each kept photo as one Example (`encode`), with TF's image keys:

    image/encoded      bytes   the photo as JPEG (upright, RGB)
    image/format       bytes   b"jpeg"
    image/height       int64   pixels
    image/width        int64   pixels
    image/class/label  int64   index into the dataset's label map
    image/class/text   bytes   product name (UTF-8)
    image/sha256       bytes   hex sha256 of the original file (identity for dedupe and split)
    image/source       bytes   URI of the original file

Every reader of the shards (training, the gate, conversion's parity checks and int8
representative data) goes through `decode_image`, so pixels are identical everywhere: the
JPEG decoded to RGB, resized bilinearly (antialiased, like Pillow's `BILINEAR`, which is
what `edge.runtime` uses on devices) to exactly H×W with no aspect crop, and rounded to
uint8 values. Models take those raw 0..255 values as float32.

Importing this module does not import TensorFlow: the encoder and `decode` are plain
Python (`edgeloop.tfrecord`), and the TF reader imports TensorFlow when called.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeloop import storage
from edgeloop.dataset import DatasetVersionError, load_dataset_info
from edgeloop.errors import MissingExtra
from edgeloop.tfrecord import RecordError, decode_example, encode_example

ENCODED = "image/encoded"
FORMAT = "image/format"
HEIGHT = "image/height"
WIDTH = "image/width"
LABEL = "image/class/label"
TEXT = "image/class/text"
SHA256 = "image/sha256"
SOURCE = "image/source"

#: Example keys and what they hold; ingest writes this table into dataset.json's `features`.
FEATURES: dict[str, str] = {
    ENCODED: "bytes: the photo as JPEG (upright, RGB)",
    FORMAT: "bytes: b'jpeg'",
    HEIGHT: "int64: pixels",
    WIDTH: "int64: pixels",
    LABEL: "int64: index into label_map",
    TEXT: "bytes: product name (UTF-8)",
    SHA256: "bytes: hex sha256 of the original file (identity for dedupe and split)",
    SOURCE: "bytes: URI of the original file",
}

_INT64 = frozenset({HEIGHT, WIDTH, LABEL})


@dataclasses.dataclass(frozen=True)
class ImageExample:
    """One photo of a dataset, as its Example holds it."""

    jpeg: bytes
    height: int
    width: int
    label: int
    text: str
    sha256: str
    source: str


def encode(example: ImageExample) -> bytes:
    """The serialized Example; equal examples give equal bytes."""
    return encode_example(
        {
            ENCODED: example.jpeg,
            FORMAT: b"jpeg",
            HEIGHT: example.height,
            WIDTH: example.width,
            LABEL: example.label,
            TEXT: example.text,
            SHA256: example.sha256,
            SOURCE: example.source,
        }
    )


def decode(data: bytes) -> ImageExample:
    """Parse serialized Example bytes back into an `ImageExample`, without TensorFlow."""
    features = decode_example(data)
    missing = sorted(set(FEATURES) - set(features))
    if missing:
        raise RecordError(f"the Example lacks {missing}; it was not written by edgeloop ingest")

    def one(key: str) -> Any:
        values = features[key]
        if len(values) != 1:
            raise RecordError(f"the Example's {key!r} holds {len(values)} values, expected one")
        return values[0]

    return ImageExample(
        jpeg=one(ENCODED),
        height=int(one(HEIGHT)),
        width=int(one(WIDTH)),
        label=int(one(LABEL)),
        text=one(TEXT).decode("utf-8"),
        sha256=one(SHA256).decode("ascii"),
        source=one(SOURCE).decode("utf-8"),
    )


# --------------------------------------------------------------------------- the TF reader


def _tensorflow() -> Any:
    try:
        import tensorflow as tf
    except ImportError:
        raise MissingExtra("tensorflow", "train") from None
    return tf


def parse(serialized: Any, keys: Sequence[str] = tuple(FEATURES)) -> dict[str, Any]:
    """`tf.io.parse_single_example` of the contract's `keys` (all of them by default): key -> scalar tensor."""
    tf = _tensorflow()
    spec = {key: tf.io.FixedLenFeature([], tf.int64 if key in _INT64 else tf.string) for key in keys}
    return dict(tf.io.parse_single_example(serialized, spec))


def decode_image(encoded: Any, size: tuple[int, int]) -> Any:
    """JPEG bytes -> H×W×3 uint8 tensor, resized the way devices resize."""
    tf = _tensorflow()
    image = tf.io.decode_jpeg(encoded, channels=3)
    image = tf.image.resize(image, size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def _image_and_label(serialized: Any, size: tuple[int, int]) -> tuple[Any, Any]:
    tf = _tensorflow()
    features = parse(serialized, (ENCODED, LABEL))
    return decode_image(features[ENCODED], size), tf.cast(features[LABEL], tf.int32)


@contextlib.contextmanager
def local_shards(shards: Sequence[str]) -> Iterator[list[str]]:
    """Shard paths TF can open: local ones as they are, remote ones staged to a temp folder."""
    if all(storage.is_local(s) for s in shards):
        yield [str(storage.local_path(s)) for s in shards]
        return
    with tempfile.TemporaryDirectory(prefix="edgeloop-shards-") as tmp:
        out = []
        for i, shard in enumerate(shards):
            target = Path(tmp) / f"{i:05d}-{shard.rsplit('/', 1)[-1]}"
            if storage.is_local(shard):
                out.append(str(storage.local_path(shard)))
            else:
                storage.download(shard, target)
                out.append(str(target))
        yield out


def decoded_dataset(paths: Sequence[str], size: tuple[int, int]) -> Any:
    """(uint8 image, int32 label) pairs in shard order, read with a parallel interleave."""
    tf = _tensorflow()
    autotune = tf.data.AUTOTUNE
    files = tf.data.Dataset.from_tensor_slices(list(paths))
    records = files.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
        cycle_length=max(1, min(4, len(paths))),
        num_parallel_calls=autotune,
        deterministic=True,  # same order every run: needed for reproducible shuffles
    )
    return records.map(lambda r: _image_and_label(r, size), num_parallel_calls=autotune, deterministic=True)


def arrays(
    paths: Sequence[str], size: tuple[int, int], limit: int | None = None
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """A split as numpy arrays, in shard order."""
    ds = decoded_dataset(paths, size)
    if limit is not None:
        ds = ds.take(limit)
    images, labels = [], []
    for batch_images, batch_labels in ds.batch(256).as_numpy_iterator():
        images.append(batch_images)
        labels.append(batch_labels)
    if not images:
        return np.zeros((0, *size, 3), dtype=np.uint8), np.zeros((0,), dtype=np.int64)
    return np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(np.int64)


def split_arrays(
    dataset_uri: str,
    split: str = "eval",
    size: tuple[int, int] = (96, 96),
    limit: int | None = None,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], list[str]]:
    """One split of a dataset version as (uint8 images N×H×W×3, class indices, label names).

    The images are exactly what a device feeds the model (see the module docstring);
    the gate and conversion's parity checks and int8 representative data read them here.
    """
    uri = str(dataset_uri).rstrip("/")
    info = load_dataset_info(uri)
    shards = info.shard_uris(split) if split in info.splits else []
    if not shards:
        raise DatasetVersionError(f"dataset {uri!r} has no {split!r} split; it has {sorted(info.splits)}")
    with local_shards(shards) as paths:
        images, labels = arrays(paths, size, limit)
    return images, labels, list(info.label_map)
