"""The model store: atomic install and revert; a crash or SIGKILL at any point leaves a loadable model."""

from __future__ import annotations

import collections
import os
import random
import signal
import time
from pathlib import Path

import pytest
from edge_testkit import sha256

import edge
from edge import InstalledModel, ModelStore
from edge._store import STEPS


def entry_for(store: ModelStore, path: Path, version: int) -> InstalledModel:
    meta = edge.load(path).metadata
    sha = sha256(path)
    return InstalledModel(
        model="shelf-products",
        version=version,
        variant="onnx_fp32",
        sha256=sha,
        size=path.stat().st_size,
        file=store.file_name("shelf-products", version, sha, ".onnx"),
        labels=tuple(meta.labels),
    )


def assert_loadable(store: ModelStore, *, run: bool = True) -> InstalledModel:
    """The store names an intact file (sha256 as recorded); with `run`, the runtime loads and runs it too."""
    entry = store.usable()
    assert entry is not None, "no usable model in the store"
    path = store.path_of(entry)
    assert sha256(path) == entry.sha256
    if run:
        assert len(edge.load(path).classify(bytes_image(), k=1)) == 1
    return entry


def bytes_image():  # type: ignore[no-untyped-def]
    import numpy as np

    return np.full((16, 16, 3), 200, np.uint8)


def test_install_keeps_current_and_previous_and_gcs_the_rest(
    tmp_path: Path, onnx_v1: Path, onnx_v2: Path, onnx_v3: Path
) -> None:
    store = ModelStore(tmp_path / "store")
    for version, path in ((1, onnx_v1), (2, onnx_v2), (3, onnx_v3)):
        store.install(path, entry_for(store, path, version))
    state = store.state()
    assert state.current and state.current.version == 3
    assert state.previous and state.previous.version == 2
    assert sorted(p.name for p in store.models_dir.iterdir()) == sorted([state.current.file, state.previous.file])
    reverted = store.revert("probe failed")
    assert reverted.current and reverted.current.version == 2 and reverted.previous is None
    assert store.is_blocked(3, sha256(onnx_v3)) and not store.is_blocked(2, sha256(onnx_v2))
    assert ModelStore(tmp_path / "store").state() == reverted  # persisted, not in memory
    # Reverting the only model leaves none (the app falls back to its bundled model) and blocks it too.
    emptied = store.revert("again")
    assert emptied.current is None and store.usable() is None and store.is_blocked(2, sha256(onnx_v2))
    with pytest.raises(edge.StoreError, match="no current model"):
        store.revert("nothing left")


@pytest.mark.parametrize("step", STEPS)
def test_crash_at_each_install_step_leaves_a_loadable_model(
    tmp_path: Path, onnx_v1: Path, onnx_v2: Path, step: str
) -> None:
    class Crash(Exception):
        pass

    def hook(name: str) -> None:
        if name == step and armed:
            raise Crash(name)

    armed = False
    store = ModelStore(tmp_path / "store", step_hook=hook)
    store.install(onnx_v1, entry_for(store, onnx_v1, 1))
    armed = True
    with pytest.raises(Crash):
        store.install(onnx_v2, entry_for(store, onnx_v2, 2))
    after = assert_loadable(ModelStore(tmp_path / "store"))
    # Before the pointer is renamed the old model serves; from then on the new one does.
    assert after.version == (2 if STEPS.index(step) > STEPS.index("rename_state") else 1)
    armed = False
    store.install(onnx_v2, entry_for(store, onnx_v2, 2))
    assert assert_loadable(store).version == 2


@pytest.mark.slow
def test_sigkill_at_random_points_of_install_always_leaves_a_loadable_model(
    tmp_path: Path, onnx_v1: Path, onnx_v2: Path, onnx_v3: Path
) -> None:
    root = tmp_path / "store"
    store = ModelStore(root)
    sources = [(1, onnx_v1), (2, onnx_v2), (3, onnx_v3)]
    entries = [(entry_for(store, p, v), p) for v, p in sources]
    store.install(onnx_v1, entries[0][0])
    rng = random.Random(7)
    kills = 220
    last_steps: collections.Counter[str] = collections.Counter()
    t0 = time.perf_counter()
    for i in range(kills):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child installs and reverts in a loop until it is killed
            os.close(read_fd)
            try:
                child = ModelStore(root, step_hook=lambda s, fd=write_fd: os.write(fd, s.encode() + b"\n"))
                while True:
                    for entry, path in entries:
                        child.install(path, entry)
                    if child.state().previous is not None:
                        child.revert("crash test")
            finally:
                os._exit(1)
        os.close(write_fd)
        # The kill lands after a random number of steps, counted from the child's reports, not
        # after a random pause: a pause covers a different part of the install on a slow or fast
        # disk, a count covers every step on any machine (the child runs on between the report
        # and the signal, so the kill falls inside the step it announced, or a little later).
        target = rng.randrange(1, 3 * len(STEPS) + 1)
        with os.fdopen(read_fd, "rb") as pipe:
            reported = [pipe.readline() for _ in range(target)]
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            assert all(reported) and os.WIFSIGNALED(status), "the child stopped before it was killed"
            seen = (b"".join(reported) + pipe.read()).split()
        last_steps[seen[-1].decode()] += 1
        # Every kill: the pointer names an intact file; every 4th: onnxruntime also loads and runs it.
        assert_loadable(ModelStore(root), run=i % 4 == 0)
    elapsed = time.perf_counter() - t0
    print(f"\nSIGKILL during install/revert: {kills}/{kills} left a loadable, intact model ({elapsed:.1f} s)")
    print("  last step reached before the kill:", dict(sorted(last_steps.items())))
    assert sum(1 for s in STEPS if last_steps[s]) >= 5  # the kills landed all over the install path


def test_unreadable_pointer_reads_as_empty(tmp_path: Path, onnx_v1: Path) -> None:
    store = ModelStore(tmp_path / "store")
    store.install(onnx_v1, entry_for(store, onnx_v1, 1))
    (tmp_path / "store" / "state.json").write_text("{ torn")
    assert store.state().current is None and store.usable() is None
