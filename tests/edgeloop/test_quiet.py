"""Third parties' start-up chatter is hidden by default and shown with --log-level DEBUG.

Each case runs a real process: what is filtered is what native code and child processes
write to file descriptor 2, which no in-process capture sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Lines TensorFlow 2.21 and Beam 2.77's local workers print on a CPU machine, copied from real runs.
CHATTER = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796176077.538766   26191 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will"
    " not be used.",
    "E0000 00:00:1796176128.894257   26191 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed"
    " call to cuInit: UNKNOWN ERROR (303)",
    "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not find cuda drivers",
    "WARNING:root:apitools not found, and bigquery client libraries are not available despite the import not raising"
    " an ImportError.",
    "INFO:__main__:Logging handler created.",
    "WARNING:__main__:No semi_persistent_directory found:  User registered objects (e.g. schema, logical type)",
]
NEWS = [
    "F0000 00:00:1796176128.894257   26191 some_op.cc:12] Check failed: a fatal error is never hidden",
    "Traceback (most recent call last):",
    "WARNING:root:a warning of the user's own",
]
FORBIDDEN = ("cuInit", "E0000", "I0000", "apitools", "semi_persistent", "absl::InitializeLog")


def _start(code: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return _finish(_start(code, *args))


def test_known_chatter_is_recognised_and_news_is_not() -> None:
    from edgeloop.quiet import is_noise

    assert [line for line in CHATTER if not is_noise(line)] == []
    assert [line for line in NEWS if is_noise(line)] == []


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_child_processes_chatter_is_dropped_unless_debug(level: str) -> None:
    # The shape of Beam's local workers: another process, writing to the stderr it inherited.
    lines = "\n".join([*CHATTER, *NEWS])
    done = _python(
        """
        import subprocess, sys
        from edgeloop.quiet import native_stderr, quiet

        quiet(sys.argv[1])
        with native_stderr():
            subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write(sys.argv[1] + '\\\\n')", sys.argv[2]])
        sys.stderr.write("after\\n")
        """,
        level,
        lines,
    )
    assert done.returncode == 0, done.stderr
    expected = [*NEWS, "after"] if level == "INFO" else [*CHATTER, *NEWS, "after"]
    assert done.stderr.splitlines() == expected


@pytest.mark.tf
def test_a_tensorflow_command_prints_no_native_chatter_unless_debug() -> None:
    # A command through the real CLI entry (its root callback) that imports TensorFlow and runs an op:
    # the import prints absl's lines, the first op looks for CUDA (`failed call to cuInit`).
    probe = """
        import sys
        from edgeloop import cli

        def tf_probe() -> None:
            import tensorflow as tf

            print(int(tf.constant(40) + 2))

        cli.app.command("tf-probe")(tf_probe)
        sys.exit(cli.main(sys.argv[1:]))
        """
    # Both at once: each spends most of its time importing TensorFlow.
    started = _start(probe, "tf-probe"), _start(probe, "--log-level", "DEBUG", "tf-probe")
    quiet, debug = (_finish(proc) for proc in started)
    assert (quiet.returncode, quiet.stdout.strip()) == (0, "42"), quiet.stderr
    assert [line for line in quiet.stderr.splitlines() if any(word in line for word in FORBIDDEN)] == []
    # With DEBUG they are allowed (a machine without a CUDA stub may print none, so not required).
    assert (debug.returncode, debug.stdout.strip()) == (0, "42"), debug.stderr


def test_the_task_runner_leaves_tensorflow_log_level_to_the_cli() -> None:
    # A TF_CPP_MIN_LOG_LEVEL set in the environment is the user's and wins over `quiet`: tasks.py set
    # it to 2, which shows C++ ERROR lines, so the demo printed `failed call to cuInit` once again.
    tasks = (Path(__file__).resolve().parents[2] / "tasks.py").read_text(encoding="utf-8")
    assert "TF_CPP_MIN_LOG_LEVEL" not in tasks
