"""The run folder contract: one type knows the layout and what "a folder or a .keras file" means."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from edgeloop import runs
from edgeloop.errors import EdgeloopError
from edgeloop.runs import RunFolder, RunFolderError

ROOT = Path(__file__).resolve().parents[2]
FILES = {runs.MODEL, runs.SAVED_MODEL, runs.EVAL, runs.HISTORY, runs.CONFUSION, runs.RUN, runs.GATE}


def test_the_layout_of_a_run(tmp_path: Path) -> None:
    run = RunFolder.of(str(tmp_path), "run-1")
    assert run.uri == str(tmp_path / "run-1")
    paths = [run.model, run.saved_model, run.card, run.eval, run.history, run.confusion, run.run, run.gate]
    assert [Path(p).name for p in paths] == [
        "model.keras",
        "saved_model",
        "model_card.json",
        "eval.json",
        "history.json",
        "confusion.png",
        "run.json",
        "gate.json",
    ]
    assert {Path(p).parent for p in paths} == {tmp_path / "run-1"}


def test_a_folder_or_a_keras_file_resolves_to_the_same_run(tmp_path: Path) -> None:
    (tmp_path / "run-1").mkdir()
    (tmp_path / "run-1" / "model.keras").write_bytes(b"keras")
    (tmp_path / "run-1" / "best.keras").write_bytes(b"keras")
    assert RunFolder.resolve(str(tmp_path / "run-1") + "/") == RunFolder(str(tmp_path / "run-1"))
    other = RunFolder.resolve(str(tmp_path / "run-1" / "best.keras"))
    assert other.uri == str(tmp_path / "run-1") and other.model == str(tmp_path / "run-1" / "best.keras")
    assert other.card == str(tmp_path / "run-1" / "model_card.json")


def test_a_run_without_a_model_is_refused_with_the_path_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match=r"baseline '.*empty' holds no model\.keras; pass a run folder"):
        RunFolder.resolve(str(tmp_path / "empty"), "baseline")
    with pytest.raises(RunFolderError, match=r"gone\.keras' holds no model\.keras"):
        RunFolder.resolve(str(tmp_path / "gone.keras"))
    assert issubclass(RunFolderError, EdgeloopError)


def test_no_stage_spells_a_run_file_name_itself() -> None:
    # The card's file name belongs to the card module (edgeloop/card.py); RunFolder names it from there.
    found = []
    for package in ("pipelines", "conversion", "dags", "registry_api"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value in FILES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not found, "use edgeloop.runs.RunFolder instead:\n" + "\n".join(found)


@pytest.mark.tf
def test_predict_answers_every_image_and_traces_the_step_once() -> None:
    import keras
    import numpy as np

    from edgeloop.runs import predict

    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs)))
    images = np.random.default_rng(0).uniform(0, 255, (70, 4, 4, 3)).astype("float32")
    for n in (70, 5, 64):  # a short last batch, a single short batch, whole batches
        np.testing.assert_allclose(predict(model, images[:n]), model(images[:n]).numpy(), rtol=1e-5, atol=1e-6)
    # Short batches are padded: one shape, one trace (not one more per short batch).
    assert model.predict_function.experimental_get_tracing_count() == 1
