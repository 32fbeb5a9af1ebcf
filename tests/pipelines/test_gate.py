"""The gate on real trained models: absolute checks, regression against a baseline, forcing, the CLI.

Also executes every SQL snippet of pipelines/train/ANALYSTS.md against the warehouse
these runs filled.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.pipelines.conftest_train import Runs, TrainEnv, runs, train_env

pytestmark = [pytest.mark.tf, pytest.mark.slow]
__all__ = ["runs", "train_env"]  # session fixtures, imported explicitly

# About 5 eval photos per product: losing all of them is p = 1/32, losing 4 is p = 1/16.
LENIENT = {
    "min_accuracy": 0.3,
    "min_macro_f1": 0.3,
    "min_class_recall": 0.0,
    "max_class_recall_drop": 0.5,
    "significance": 0.1,
}


@pytest.fixture(scope="module")
def worse_run(train_env: TrainEnv, runs: Runs) -> str:
    """A copy of the base run whose head swaps its best-recognised product with another: deliberately worse.

    Examples the base model called `best` are now called `other`, so `best` loses at
    least 2 * recall - 1 of its recall whatever the base model's quality.
    """
    from edgeloop.card import read_card, write_card
    from edgeloop.runs import load_model
    from pipelines.train.model import HEAD

    src = Path(runs.base.run_dir)
    dst = Path(train_env.runs) / "worse-run"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    model = load_model(str(src / "model.keras"))
    kernel, bias = model.get_layer(HEAD).get_weights()
    best = best_class(runs)
    other = (best + 1) % len(runs.base.labels)
    kernel[:, [best, other]] = kernel[:, [other, best]]
    bias[[best, other]] = bias[[other, best]]
    model.get_layer(HEAD).set_weights([kernel, bias])
    model.save(dst / "model.keras")
    card = read_card(dst)
    lineage = card.lineage.model_copy(update={"run_id": "worse-run"})
    write_card(dst, card.model_copy(update={"version": "worse-run", "lineage": lineage}))
    return str(dst)


def best_class(runs: Runs) -> int:
    return int(np.argmax([c.recall for c in runs.base.eval.classes]))


def test_gate_without_baseline_uses_absolute_checks_and_records_everything(train_env: TrainEnv, runs: Runs) -> None:
    from edgeloop import warehouse
    from edgeloop.card import read_card
    from pipelines.gate.checks import NO_BASELINE_NOTE
    from pipelines.gate.core import gate
    from pipelines.gate.settings import GateSettings

    report = gate(runs.base.run_dir, None, GateSettings(**LENIENT), warehouse_url=train_env.warehouse)
    names = [c.name for c in report.checks]
    assert names[:2] == ["min_accuracy", "min_macro_f1"]
    assert names[2:] == [f"min_class_recall:{label}" for label in runs.base.labels]
    assert NO_BASELINE_NOTE in report.notes and report.baseline is None
    by = {c.name: c for c in report.checks}
    assert by["min_macro_f1"].value == pytest.approx(runs.base.eval.macro_f1, abs=1e-6)
    assert report.verdict == ("pass" if all(c.passed for c in report.checks) else "fail")
    assert json.loads((Path(runs.base.run_dir) / "gate.json").read_text())["verdict"] == report.verdict
    assert read_card(runs.base.run_dir).gate == report
    with warehouse.connect(train_env.warehouse) as wh:
        rows = wh.query("SELECT * FROM gate_results WHERE run_id = ? ORDER BY check_name", [runs.base.run_id])
    assert sorted(r["check_name"] for r in rows) == sorted(names)
    assert {r["verdict"] for r in rows} == {report.verdict}


def test_worse_model_fails_regression_with_a_readable_reason(train_env: TrainEnv, runs: Runs, worse_run: str) -> None:
    from pipelines.gate.core import gate
    from pipelines.gate.settings import GateSettings

    report = gate(worse_run, runs.base.run_dir, GateSettings(**LENIENT), warehouse_url=train_env.warehouse)
    assert report.verdict == "fail" and report.baseline == runs.base.run_dir
    by = {c.name: c for c in report.checks}
    assert runs.base.eval.classes[best_class(runs)].recall > 0.75  # so the swap must cost it more than 0.5
    swapped = runs.base.labels[best_class(runs)]
    fell = by[f"no_regression:recall:{swapped}"]
    assert not fell.passed
    assert re.fullmatch(
        rf"recall of {swapped} fell from \d\.\d{{3}} in baseline {runs.base.run_id} to \d\.\d{{3}}, "
        r"a drop of \d\.\d{3}, more than the 0\.500 allowed \(lost \d, gained 0 of \d photos; "
        r"paired exact test p=0\.0\d\d \(significant at 0\.1\)\)",
        fell.detail,
    ), fell.detail
    untouched = runs.base.labels[(best_class(runs) + 2) % 3]
    assert by[f"no_regression:recall:{untouched}"].passed  # the third product's predictions did not change


def test_warm_model_is_compared_on_shared_classes_only(train_env: TrainEnv, runs: Runs) -> None:
    from pipelines.gate.core import gate
    from pipelines.gate.settings import GateSettings

    report = gate(runs.warm.run_dir, runs.base.run_dir, GateSettings(**LENIENT), warehouse_url=train_env.warehouse)
    regression = [c.name for c in report.checks if c.name.startswith("no_regression:recall:")]
    assert regression == [f"no_regression:recall:{label}" for label in runs.base.labels]
    new = runs.warm.labels[3]
    assert f"min_class_recall:{new}" in {c.name for c in report.checks}
    assert any("new since baseline" in n and new in n for n in report.notes)


def test_regate_replaces_rows(train_env: TrainEnv, runs: Runs, worse_run: str) -> None:
    from edgeloop import warehouse
    from pipelines.gate.core import gate
    from pipelines.gate.settings import GateSettings

    gate(worse_run, runs.base.run_dir, GateSettings(**LENIENT), warehouse_url=train_env.warehouse)
    gate(worse_run, None, GateSettings(**LENIENT), warehouse_url=train_env.warehouse)
    with warehouse.connect(train_env.warehouse) as wh:
        rows = wh.query("SELECT check_name FROM gate_results WHERE run_id = 'worse-run'")
    # The second gate had no baseline: its rows replace the first gate's, regression checks included.
    assert rows and not any(r["check_name"].startswith("no_regression") for r in rows)


def test_cli_exit_codes_reasons_and_force(
    train_env: TrainEnv, runs: Runs, worse_run: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgeloop.cli import main

    monkeypatch.setenv("EDGELOOP_WAREHOUSE", train_env.warehouse)
    monkeypatch.setenv("USER", "qa-lead")
    from edgeloop.settings import get_settings

    get_settings.cache_clear()
    lenient = [
        "--min-accuracy",
        "0.3",
        "--min-macro-f1",
        "0.3",
        "--min-class-recall",
        "0",
        "--max-class-recall-drop",
        "0.5",
        "--significance",
        "0.1",
    ]
    code = main(["gate", worse_run, "--baseline", runs.base.run_dir, *lenient])
    out = capsys.readouterr().out
    assert code == 1
    assert "verdict: fail" in out and "fell from" in out and "no_regression:recall" in out

    code = main(["gate", worse_run, "--baseline", runs.base.run_dir, "--force", *lenient])
    assert code == 2 and "--force needs --reason" in capsys.readouterr().err

    code = main(["gate", worse_run, "--baseline", runs.base.run_dir, "--force", "--reason", "shelf demo", *lenient])
    out = capsys.readouterr().out
    assert code == 0 and "verdict: forced" in out
    gate_json = json.loads((Path(worse_run) / "gate.json").read_text())
    assert (gate_json["forced_by"], gate_json["forced_reason"]) == ("qa-lead", "shelf demo")


def test_cli_shows_the_verdict_and_failed_checks_in_80_columns(
    train_env: TrainEnv, runs: Runs, worse_run: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    from typer.testing import CliRunner

    from pipelines.gate.cli import register

    monkeypatch.setenv("EDGELOOP_WAREHOUSE", train_env.warehouse)
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    lenient = [f"--{k.replace('_', '-')}={v}" for k, v in LENIENT.items()]

    def show(*args: str) -> tuple[int, list[str]]:
        result = CliRunner().invoke(app, ["gate", *lenient, *args], env={"COLUMNS": "80"})  # the last flag wins
        return result.exit_code, result.output.splitlines()

    code, lines = show(runs.base.run_dir, "--min-accuracy=0", "--min-macro-f1=0")  # the small test model passes
    text = " ".join(line.strip() for line in lines)  # Rich wraps a long run folder: read it unwrapped
    checks = 2 + len(runs.base.labels)
    assert code == 0, text
    assert text.startswith(f"verdict: pass for {runs.base.run_dir}: 0 of {checks} checks failed"), text
    assert f"✓ all {checks} checks passed (--all lists every check)" in lines

    code, lines = show(worse_run, "--baseline", runs.base.run_dir)
    text = " ".join(line.strip() for line in lines)
    failed = [line for line in lines if line.startswith("✗ ")]
    assert code == 1 and text.startswith(f"verdict: fail for {worse_run}: {len(failed)} of "), text
    assert any(line.startswith("✗ no_regression:recall:") for line in failed), text
    assert "min_class_recall" not in text  # every class meets the lenient floor: passed checks are only counted
    assert max(len(line) for line in lines) <= 80

    code, every = show(worse_run, "--baseline", runs.base.run_dir, "--all")
    assert code == 1 and sum("min_class_recall:" in line for line in every) == len(runs.base.labels)
    assert max(len(line) for line in every) <= 80


def test_every_analyst_snippet_runs(train_env: TrainEnv, runs: Runs, worse_run: str) -> None:
    from edgeloop import warehouse
    from pipelines.gate.core import gate
    from pipelines.gate.settings import GateSettings

    # Make sure the warehouse holds a forced and a failed gate whatever order tests ran in.
    gate(
        worse_run,
        runs.base.run_dir,
        GateSettings(**LENIENT),
        force=True,
        forced_by="ana",
        reason="demo",
        warehouse_url=train_env.warehouse,
    )
    doc = (Path(__file__).parents[2] / "pipelines" / "train" / "ANALYSTS.md").read_text()
    snippets = re.findall(r"```sql\n(.*?)```", doc, flags=re.S)
    assert len(snippets) >= 8
    with warehouse.connect(train_env.warehouse) as wh:
        results = [wh.query(sql) for sql in snippets]
    assert all(results[i] for i in (0, 1, 2, 4, 5, 6, 7)), [len(r) for r in results]
    best = {r["dataset_version"]: r for r in results[0]}
    assert set(best) >= {"v0001", "v0002"}
    assert {r["label"] for r in results[2]} >= set(runs.warm.labels)
    forced = results[6]
    assert any(r["run_id"] == "worse-run" and r["forced_by"] == "ana" for r in forced)
    assert np.isfinite([r["recall"] for r in results[7]]).all()
