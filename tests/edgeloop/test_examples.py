"""The Examples contract: one encoder, one parser (plain Python and TensorFlow), the keys in one place."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from edgeloop import examples
from edgeloop.tfrecord import RecordError, decode_example, encode_example

EXAMPLE = examples.ImageExample(
    jpeg=b"\xff\xd8\xff\xe0fake-jpeg",
    height=480,
    width=640,
    label=7,
    text="lavender-soap",
    sha256="ab" * 32,
    source="gs://photos/lavender-soap/0001.jpg",
)


def test_the_encoder_writes_the_bytes_ingest_always_wrote() -> None:
    # The digest of the Example that ingest built from a literal dict before the contract had a module:
    # datasets written before and after are byte for byte the same.
    data = examples.encode(EXAMPLE)
    assert (hashlib.sha256(data).hexdigest(), len(data)) == (
        "ae18aeae455d348b383b88637b29fb8cd47dc13d6b2c5f91a1c89bb17041c4b5",
        321,
    )
    assert set(decode_example(data)) == set(examples.FEATURES)


def test_the_encoders_bytes_parse_back_to_the_same_example() -> None:
    assert examples.decode(examples.encode(EXAMPLE)) == EXAMPLE


def test_an_example_without_the_contracts_keys_is_refused_by_name() -> None:
    data = encode_example({examples.ENCODED: b"jpeg", examples.LABEL: 1})
    with pytest.raises(RecordError, match=r"lacks \['image/class/text', 'image/format', 'image/height'"):
        examples.decode(data)
    twice = encode_example({**{key: 1 for key in examples.FEATURES}, examples.LABEL: [1, 2]})
    with pytest.raises(RecordError, match=r"'image/class/label' holds 2 values, expected one"):
        examples.decode(twice)


def test_the_contract_imports_without_tensorflow() -> None:
    code = "import sys, edgeloop.examples; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.tf
@pytest.mark.slow
def test_tensorflow_parses_the_encoders_bytes_to_the_same_example() -> None:
    pytest.importorskip("tensorflow", reason="TensorFlow is missing: `uv sync --extra train`")
    parsed = {key: value.numpy() for key, value in examples.parse(examples.encode(EXAMPLE)).items()}
    assert set(parsed) == set(examples.FEATURES)
    back = examples.ImageExample(
        jpeg=parsed[examples.ENCODED],
        height=int(parsed[examples.HEIGHT]),
        width=int(parsed[examples.WIDTH]),
        label=int(parsed[examples.LABEL]),
        text=parsed[examples.TEXT].decode(),
        sha256=parsed[examples.SHA256].decode(),
        source=parsed[examples.SOURCE].decode(),
    )
    assert back == EXAMPLE and parsed[examples.FORMAT] == b"jpeg"
