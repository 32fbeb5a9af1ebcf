"""The standard-metadata writer's inputs and its tool environment, without TensorFlow or MediaPipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conversion import tflite_metadata
from edge import metadata as md
from edge.manifest import InputSpec


def meta(dtype: str = "float32") -> md.ModelMetadata:
    scale, zero = (None, None) if dtype == "float32" else (1.0, 0)
    return md.ModelMetadata(
        name="shelf-products",
        version="7",
        variant="tflite_fp32" if dtype == "float32" else "tflite_int8",
        labels=["lipstick", "serum", "soap"],
        input=InputSpec(height=96, width=80, dtype=dtype, scale=scale, zero_point=zero),  # type: ignore[arg-type]
    )


def test_float_inputs_take_raw_pixels_so_mediapipe_normalizes_with_mean_0_std_1() -> None:
    spec = tflite_metadata.spec(Path("raw.tflite"), Path("out.tflite"), meta("float32"), Path("shown.json"))
    assert (spec["norm_mean"], spec["norm_std"]) == ([0.0] * 3, [1.0] * 3)


def test_integer_inputs_carry_no_normalization_their_quantization_says_it() -> None:
    spec = tflite_metadata.spec(Path("raw.tflite"), Path("out.tflite"), meta("uint8"), Path("shown.json"))
    assert (spec["norm_mean"], spec["norm_std"]) == (None, None)


def test_labels_size_and_edgeloop_json_come_from_one_metadata() -> None:
    source = meta()
    spec = tflite_metadata.spec(Path("raw.tflite"), Path("out.tflite"), source, Path("shown.json"))
    (extra,) = spec["associated_files"]
    assert extra["name"] == md.METADATA_NAME
    assert md.ModelMetadata.model_validate_json(extra["text"]) == source
    assert spec["labels"] == source.labels
    assert (spec["name"], spec["version"], spec["width"], spec["height"]) == ("shelf-products", "7", 80, 96)


def test_the_tool_environment_is_where_the_setting_says(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGELOOP_CONVERT_MEDIAPIPE_ENV", str(tmp_path / "mp"))
    assert tflite_metadata.env_dir() == tmp_path / "mp"


def test_a_source_checkout_keeps_the_environment_under_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGELOOP_CONVERT_MEDIAPIPE_ENV", raising=False)
    assert tflite_metadata.env_dir() == Path(__file__).resolve().parents[2] / ".tools" / "mediapipe-env"


def test_a_built_environment_is_reused_without_uv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = tmp_path / "mp"
    env.mkdir()
    monkeypatch.setenv("EDGELOOP_CONVERT_MEDIAPIPE_ENV", str(env))
    (env / tflite_metadata.STAMP).write_text(json.dumps(tflite_metadata._wanted_stamp(tflite_metadata._base_python())))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))  # a rebuild would need uv and fail
    monkeypatch.delenv("UV", raising=False)
    assert tflite_metadata.ensure_env() == env / "bin" / "python"


def test_a_failing_tool_names_what_failed_and_its_last_words(tmp_path: Path) -> None:
    script = tmp_path / "refuse.py"
    script.write_text("import sys\nsys.stderr.write('ValueError: The model does not have metadata.\\n')\nsys.exit(1)\n")
    with pytest.raises(tflite_metadata.MetadataToolError, match=r"the writer on tflite_fp16 failed \(exit 1\): .*"):
        tflite_metadata._run(["python3", str(script)], "the writer on tflite_fp16", 60)


def test_building_without_uv_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGELOOP_CONVERT_MEDIAPIPE_ENV", str(tmp_path / "mp"))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    monkeypatch.delenv("UV", raising=False)
    monkeypatch.setattr(tflite_metadata, "TOOL_DIR", tmp_path / "installed" / "conversion" / "mediapipe_tool")
    with pytest.raises(tflite_metadata.MetadataToolError, match=r"uv is needed .*pip install uv"):
        tflite_metadata.ensure_env()
