"""Bad input is refused before anything is converted or written (no TensorFlow needed to get there)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from conversion.data import ConversionData
from conversion.errors import ConversionError, LabelMismatch, MissingData, RunGateFailed
from conversion.pipeline import ConvertOptions, convert
from edge.manifest import InputSpec
from edgeloop.card import GateCheck, GateReport, Lineage, ModelCard, write_card
from edgeloop.cli import main
from edgeloop.errors import ConfigError

LABELS = ["lavender-soap", "rose-bath-bomb", "mint-shampoo-bar"]


def card_only_run(folder: Path, *, verdict: str = "pass", dataset_uri: str | None = None) -> Path:
    """A run folder holding only its card: enough for every check made before the model is loaded."""
    check = GateCheck(
        name="min_macro_f1", threshold=0.8, value=0.5, passed=verdict == "pass", detail="macro-F1 0.50 < 0.80"
    )
    write_card(
        folder,
        ModelCard(
            name="shelf-products",
            version="r1",
            created_at=dt.datetime.now(dt.UTC),
            labels=LABELS,
            input=InputSpec(height=8, width=8, dtype="float32"),
            gate=GateReport(verdict=verdict, checks=[check]),
            lineage=Lineage(dataset_version="v1", dataset_uri=dataset_uri, run_id="r1"),
        ),
    )
    return folder


def data(labels: list[str]) -> ConversionData:
    return ConversionData(
        eval_images=np.zeros((3, 8, 8, 3), np.uint8),
        eval_labels=np.array([0, 1, 2]),
        representative=np.zeros((2, 8, 8, 3), np.uint8),
        labels=labels,
    )


def test_cli_refuses_a_run_that_failed_its_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = card_only_run(tmp_path / "run", verdict="fail")
    assert main(["convert", "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert "run r1 failed its gate (macro-F1 0.50 < 0.80)" in err
    assert "--ignore-gate" in err
    assert not (tmp_path / "workspace" / "packages").exists()


def test_cli_refuses_unknown_variant_and_opset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = card_only_run(tmp_path / "run")
    assert main(["convert", "--run", str(run), "--variants", "tflite_int4"]) == 2
    assert "unknown variant(s) ['tflite_int4']" in capsys.readouterr().err
    assert main(["convert", "--run", str(run), "--opset", "30"]) == 2
    assert "--opset 30 is not supported; use 13..18" in capsys.readouterr().err


def test_label_map_from_another_dataset_version_is_refused(tmp_path: Path) -> None:
    run = card_only_run(tmp_path / "run")
    with pytest.raises(LabelMismatch, match=r"only in the dataset: \['cocoa-lip-balm'\]"):
        convert(run, data=data([*LABELS, "cocoa-lip-balm"]), options=ConvertOptions(output=str(tmp_path / "pkg")))
    assert not (tmp_path / "pkg").exists()


def test_missing_dataset_and_missing_card(tmp_path: Path) -> None:
    run = card_only_run(tmp_path / "run")
    with pytest.raises(MissingData, match=r"names no dataset \(lineage.dataset_uri\)"):
        convert(run)
    with pytest.raises(ConversionError, match=r"has no model_card\.json"):
        convert(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model_card.json").write_text('{"name": "m"}')
    with pytest.raises(
        ConversionError, match=r"is not a model card \(\d+ problem\(s\), first: version: Field required"
    ):
        convert(tmp_path / "bad")


def test_missing_representative_images(tmp_path: Path) -> None:
    run = card_only_run(tmp_path / "run")
    empty = ConversionData(data(LABELS).eval_images, data(LABELS).eval_labels, np.zeros((0, 8, 8, 3), np.uint8), LABELS)
    with pytest.raises(MissingData, match="no representative images"):
        convert(run, data=empty, options=ConvertOptions(variants=["tflite_int8"]))


def test_failed_gate_is_a_typed_error(tmp_path: Path) -> None:
    run = card_only_run(tmp_path / "run", verdict="fail")
    with pytest.raises(RunGateFailed):
        convert(run, data=data(LABELS))
    with pytest.raises(ConfigError):
        convert(run, data=data(LABELS), options=ConvertOptions(threads=0, ignore_gate=True))
