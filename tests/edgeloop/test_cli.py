"""The `edgeloop` command as a person uses it: a real subprocess, exit codes and messages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EDGELOOP = [sys.executable, "-m", "edgeloop.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGELOOP, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=120,
    )


def test_help_lists_commands_in_the_order_of_the_loop() -> None:
    result = run("--help")
    assert result.returncode == 0, result.stderr
    panels = re.findall(r"^╭─ (.+?) ─", result.stdout, re.M)
    listed = re.findall(r"^│ ([a-z]+) {2,}", result.stdout, re.M)
    loop = ["data", "ingest", "train", "gate", "convert", "serve", "publish", "keys", "registry",
            "models", "versions", "alias", "rollback", "audit", "bench", "telemetry", "sql", "demo"]  # fmt: skip
    assert listed == loop, result.stdout
    assert panels[0] == "Options" and panels[1:4] == ["1. Photos → dataset", "2. Train and gate", "3. Convert"]
    assert "More" not in panels  # every command a stage registers has its place in the loop


def test_sql_on_a_fresh_workspace(tmp_path: Path) -> None:
    result = run("sql", "SELECT COUNT(*) AS n FROM training_runs", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 0}]
    assert (tmp_path / "workspace" / "warehouse.duckdb").exists()
    tables = run("sql", "SELECT table_name FROM information_schema.tables ORDER BY 1", "--format", "csv")
    assert "telemetry_events" in tables.stdout and "v_best_run_per_dataset" in tables.stdout


def test_bad_sql_is_one_line_not_a_traceback() -> None:
    result = run("sql", "SELECT nope FROM nowhere")
    assert result.returncode == 2
    assert "query failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_is_one_line() -> None:
    result = run("sql", "SELECT 1", env={"EDGELOOP_LOG_LEVEL": "loud"})
    assert result.returncode == 2
    assert "EDGELOOP_LOG_LEVEL='loud'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_data_synth_writes_class_folders(tmp_path: Path) -> None:
    out = tmp_path / "photos"
    result = run("data", "synth", "--output", str(out), "--products", "3", "--images", "4", "--size", "96")
    assert result.returncode == 0, result.stderr
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 3
    assert all(len(list(f.glob("*.jpg"))) == 4 for f in folders)
    assert result.stdout.strip() == str(out)


def test_unknown_command_is_a_usage_error() -> None:
    result = run("no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr
    assert "Traceback" not in result.stderr
