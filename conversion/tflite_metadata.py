"""Standard TFLite Metadata, the kind MediaPipe Tasks and ML Kit read, written by MediaPipe itself.

Every TFLite variant gets the `TFLITE_METADATA` buffer (name, version, description; the
input as an RGB image with its size and normalization; the output as category scores
with `labels.txt` as TENSOR_AXIS_LABELS) and one associated-files ZIP that holds both
`labels.txt` and edgeloop's `edgeloop.json`, so `edge.metadata` reads the file unchanged.
Both files are rendered from the same `ModelMetadata`, the one source of truth.

Why MediaPipe runs in its own environment: the mediapipe wheels that install beside our
TensorFlow stack (protobuf 6; 0.10.30 up to 1.2.3) ship metadata writers that cannot be
imported (they import `mediapipe.tasks.cc.metadata.python._pywrap_metadata_version`, which
those wheels no longer contain); 0.10.21, the last wheel whose writers work, needs
protobuf < 5 and numpy < 2, and tflite-support 0.4.4 needs protobuf 3.20. So conversion
builds a venv with uv from the pinned, hash-checked `mediapipe_tool/requirements.txt` on
first use (cached; offline afterwards) and runs `mediapipe_tool/write_metadata.py` in it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from conversion import tflite_pack
from conversion.errors import ConversionError
from conversion.settings import get_convert_settings
from edge import metadata as md

log = logging.getLogger(__name__)

TOOL_DIR = Path(__file__).resolve().parent / "mediapipe_tool"
REQUIREMENTS = TOOL_DIR / "requirements.txt"
WRITER = TOOL_DIR / "write_metadata.py"
STAMP = "edgeloop-env.json"
BUILD_TIMEOUT_S = 1800  # first build downloads ~300 MB of wheels
TOOL_TIMEOUT_S = 600


class MetadataToolError(ConversionError):
    """The MediaPipe tool environment cannot be built, or its writer refused a file."""


def env_dir() -> Path:
    """Where the tool environment lives: the setting, else `.tools/` of a source checkout, else the user cache."""
    configured = get_convert_settings().mediapipe_env
    if configured:
        return Path(configured).expanduser()
    checkout = TOOL_DIR.parents[1]
    if (checkout / "pyproject.toml").is_file():
        return checkout / ".tools" / "mediapipe-env"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "edgeloop" / "mediapipe-env"


def _python_in(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _uv() -> str:
    # `uv run` exports UV; tasks.py installs uv into .tools/ when it is not on PATH.
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(TOOL_DIR.parents[1] / ".tools/bin/uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise MetadataToolError(
        "uv is needed to build the MediaPipe tool environment and was not found; "
        "install it (`pip install uv`) or run through `python3 tasks.py`"
    )


def _base_python() -> str:
    configured = get_convert_settings().mediapipe_python
    if configured:
        return configured
    if sys.version_info[:2] >= (3, 13):
        raise MetadataToolError(
            f"the MediaPipe tool environment needs Python 3.11 or 3.12 (mediapipe 0.10.21), this is "
            f"{sys.version.split()[0]}; set EDGELOOP_CONVERT_MEDIAPIPE_PYTHON to a python3.11 or python3.12"
        )
    return sys.executable


def _wanted_stamp(python: str) -> dict[str, str]:
    return {"requirements_sha256": hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest(), "python": python}


def _clean_env() -> dict[str, str]:
    # The tool env must not see the main venv (VIRTUAL_ENV, PYTHONPATH) or it imports our protobuf 6.
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _run(cmd: list[str], what: str, timeout: float) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_clean_env(), check=False)
    except subprocess.TimeoutExpired:
        raise MetadataToolError(f"{what} did not finish within {timeout:.0f} s: {' '.join(cmd)}") from None
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-5:]
        raise MetadataToolError(f"{what} failed (exit {done.returncode}): {' | '.join(tail)}")


def ensure_env() -> Path:
    """The tool environment's python, built from `requirements.txt` when missing or stale."""
    env = env_dir()
    base = _base_python()
    wanted = _wanted_stamp(base)
    stamp = env / STAMP
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == wanted:
        return _python_in(env)
    log.info("building the MediaPipe tool environment in %s (once; later runs reuse it)", env)
    if env.exists():
        shutil.rmtree(env)
    uv = _uv()
    _run([uv, "venv", "--quiet", "--python", base, str(env)], "creating the MediaPipe tool environment", 300)
    _run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(_python_in(env)),
            "--require-hashes",
            "-r",
            str(REQUIREMENTS),
        ],
        f"installing {REQUIREMENTS.name} into {env}",
        BUILD_TIMEOUT_S,
    )
    # Written last: an interrupted build has no stamp and is rebuilt next time.
    stamp.write_text(json.dumps(wanted), encoding="utf-8")
    return _python_in(env)


def run_script(script: Path, *args: str, what: str) -> None:
    """Run `script` with the tool environment's python (building it first if needed)."""
    _run([str(ensure_env()), str(script), *args], what, TOOL_TIMEOUT_S)


def normalization(meta: md.ModelMetadata) -> tuple[list[float] | None, list[float] | None]:
    """NormalizationOptions mean/std: the models take raw 0..255 pixels, so float inputs are (x - 0) / 1.

    Integer inputs carry no normalization: MediaPipe feeds the pixels as they are and the
    tensor's own quantization (scale, zero point) says what they mean.
    """
    if meta.input.dtype == "float32":
        return [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    return None, None


def description(meta: md.ModelMetadata) -> str:
    return (
        f"{meta.name} {meta.version} ({meta.variant}): names the product in a photo, one of "
        f"{len(meta.labels)} labels. Input: RGB {meta.input.width}x{meta.input.height}, raw 0..255 pixels."
    )


def spec(raw: Path, target: Path, meta: md.ModelMetadata, displayer_json: Path) -> dict[str, Any]:
    """The writer's input: everything derived from `meta`, so the two metadata blocks cannot disagree."""
    mean, std = normalization(meta)
    return {
        "model": str(raw),
        "output": str(target),
        "displayer_json": str(displayer_json),
        "name": meta.name,
        "version": meta.version,
        "description": description(meta),
        "author": "edgeloop",
        "input_description": "RGB image, raw 0..255 pixels; resizing and scaling are inside the model.",
        "labels": list(meta.labels),
        "height": meta.input.height,
        "width": meta.input.width,
        "norm_mean": mean,
        "norm_std": std,
        "associated_files": [
            {
                "name": md.METADATA_NAME,
                "description": "edgeloop's metadata: variant, labels, input spec (read by edgeloop's device SDKs).",
                "text": meta.model_dump_json(indent=2),
            }
        ],
    }


def write(raw: Path, target: Path, meta: md.ModelMetadata) -> dict[str, Any]:
    """Write `raw` (a bare flatbuffer) to `target` with both metadata blocks; return MediaPipe's displayer JSON."""
    with tempfile.TemporaryDirectory(prefix="edgeloop-tflite-metadata-") as work:
        spec_path, shown = Path(work) / "spec.json", Path(work) / "displayer.json"
        spec_path.write_text(json.dumps(spec(raw, target, meta, shown)), encoding="utf-8")
        run_script(WRITER, str(spec_path), what=f"MediaPipe's metadata writer on {meta.variant}")
        target.write_bytes(tflite_pack.compact(target.read_bytes()))
        return json.loads(shown.read_text(encoding="utf-8"))
