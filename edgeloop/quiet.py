"""Third parties' start-up chatter, hidden unless the log level is DEBUG.

On a CPU machine TensorFlow prints `E0000 … failed call to cuInit` and other C++ lines, and
Beam prints `apitools not found` and `No semi_persistent_directory found`: a user reads them
as failures. `quiet(level)` must run before TensorFlow is first imported (the CLI's root
callback, each DAG task): TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` once, and prints some lines
while it loads, before any setting reaches its C++ logger, so its import runs with the
process's stderr (file descriptor 2, which native code writes to) filtered line by line.
Beam's local workers are processes of their own; `native_stderr()` filters what they print
and `worker_log_level()` is the level their harness logs at.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys
import threading
import types
from collections.abc import Iterator, Sequence
from typing import Any

TF_ENV = "TF_CPP_MIN_LOG_LEVEL"
# Loggers whose warnings are start-up noise, not news, for a person running a command.
CHATTY = ("absl", "apache_beam")
# Lines native code and Beam's workers print straight to stderr, known to be noise.
NOISE = re.compile(
    r"[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "  # absl / glog C++ logs (F, fatal, is kept)
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] \S+:\d+\] "  # TensorFlow's own C++ log format
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    r"|WARNING:root:apitools not found"
    r"|INFO:__main__:Logging handler created\."
    r"|WARNING:__main__:No semi_persistent_directory found"
)

_state = {"quiet": False}


def quiet(level: str) -> None:
    """Hide third parties' start-up chatter unless `level` is DEBUG; idempotent."""
    debug = level.upper() == "DEBUG"
    _state["quiet"] = not debug
    if debug:
        os.environ[TF_ENV] = "0"
    else:
        os.environ.setdefault(TF_ENV, "3")  # a user's own setting wins
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.ERROR)
    root = logging.getLogger()
    if not any(isinstance(f, _BeamImportWarning) for f in root.filters):
        root.addFilter(_BeamImportWarning())
    if not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport(("tensorflow",)))


def worker_log_level() -> str:
    """The level Beam's local worker processes log at (`--default_sdk_harness_log_level`)."""
    return "ERROR" if _state["quiet"] else "WARNING"


def is_noise(line: str) -> bool:
    """Whether a line printed on stderr is known third-party chatter."""
    return NOISE.match(line) is not None


class _BeamImportWarning(logging.Filter):
    """Beam warns on the root logger that an optional BigQuery client is absent, at import."""

    def filter(self, record: logging.LogRecord) -> bool:
        beam = f"{os.sep}apache_beam{os.sep}" in record.pathname
        return not (_state["quiet"] and beam and record.levelno < logging.ERROR)


@contextlib.contextmanager
def native_stderr() -> Iterator[None]:
    """While inside, drop known noise from what native code and child processes print on stderr.

    Python's own `sys.stderr` keeps writing to the terminal (colours and widths stay right);
    only file descriptor 2 goes through a pipe, relayed line by line by a thread.
    """
    if not _state["quiet"]:
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    relay = threading.Thread(target=_relay, args=(read_end, original), name="edgeloop-stderr", daemon=True)
    relay.start()
    python_stderr = sys.stderr
    if _is_fd2(python_stderr):
        sys.stderr = open(os.dup(original), "w", buffering=1, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
    try:
        yield
    finally:
        if sys.stderr is not python_stderr:
            sys.stderr.close()
            sys.stderr = python_stderr
        os.dup2(original, 2)  # closes our write end: the relay reads to the end and stops
        # Child processes still holding the pipe keep it open; the relay then outlives this block.
        relay.join(timeout=5)


def _is_fd2(stream: Any) -> bool:
    try:
        return bool(stream.fileno() == 2)
    except (AttributeError, OSError, ValueError):
        return False  # e.g. pytest's capture: not the process's stderr


def _relay(read_end: int, original: int) -> None:
    with open(read_end, "rb") as lines, open(original, "wb", buffering=0) as out:
        for line in lines:
            if not is_noise(line.decode("utf-8", "replace")):
                out.write(line)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Runs the first import of the named packages inside `native_stderr()`, then steps aside."""

    def __init__(self, names: Sequence[str]) -> None:
        self._names = tuple(names)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self._names or not _state["quiet"]:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _FilteredLoader(spec.loader)
                return spec
        return None


class _FilteredLoader(importlib.abc.Loader):
    """The real loader, executing the module with stderr filtered."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with native_stderr():
            self._loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)  # resources, get_filename, …: the real loader answers
