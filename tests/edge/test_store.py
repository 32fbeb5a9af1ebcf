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
                    for entry, path in entries:  # the updater's way: trial, marker, commit
                        child.stage(path, entry)
                        child.begin_load(entry)
                        child.commit_load(entry)
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
        ModelStore(root).recover()  # a kill between begin_load and commit_load: that model is blocked ...
        assert_loadable(ModelStore(root), run=False)  # ... and a loadable one still serves
    elapsed = time.perf_counter() - t0
    print(f"\nSIGKILL during install/revert: {kills}/{kills} left a loadable, intact model ({elapsed:.1f} s)")
    print("  last step reached before the kill:", dict(sorted(last_steps.items())))
    assert sum(1 for s in STEPS if last_steps[s]) >= 5  # the kills landed all over the install path


def test_unreadable_pointer_reads_as_empty(tmp_path: Path, onnx_v1: Path) -> None:
    store = ModelStore(tmp_path / "store")
    store.install(onnx_v1, entry_for(store, onnx_v1, 1))
    (tmp_path / "store" / "state.json").write_text("{ torn")
    assert store.state().current is None and store.usable() is None


def _trial_steps(tmp_path: Path, onnx_v1: Path, onnx_v2: Path) -> list[str]:
    seen: list[str] = []
    store = ModelStore(tmp_path / "probe", step_hook=seen.append)
    store.install(onnx_v1, entry_for(store, onnx_v1, 1))
    seen.clear()
    entry = entry_for(store, onnx_v2, 2)
    store.stage(onnx_v2, entry)
    store.begin_load(entry)
    store.commit_load(entry)
    return seen


TRIAL_STEPS = 12  # stage: 4 file steps + write/rename state + gc; begin_load: 2; commit_load: 2 + gc


@pytest.mark.parametrize("crash_at", range(TRIAL_STEPS))
def test_crash_at_each_trial_step_serves_the_old_model_until_the_commit(
    tmp_path: Path, onnx_v1: Path, onnx_v2: Path, crash_at: int
) -> None:
    steps = _trial_steps(tmp_path, onnx_v1, onnx_v2)
    assert len(steps) == TRIAL_STEPS, steps

    class Crash(Exception):
        pass

    count = -1

    def hook(name: str) -> None:
        nonlocal count
        count += 1
        if count == crash_at:
            raise Crash(name)

    store = ModelStore(tmp_path / "store")
    store.install(onnx_v1, entry_for(store, onnx_v1, 1))
    store = ModelStore(tmp_path / "store", step_hook=hook)
    entry = entry_for(store, onnx_v2, 2)
    with pytest.raises(Crash):
        store.stage(onnx_v2, entry)
        store.begin_load(entry)
        store.commit_load(entry)
    reopened = ModelStore(tmp_path / "store")
    committed = crash_at > TRIAL_STEPS - 2  # only after commit_load's rename_state
    assert assert_loadable(reopened, run=False).version == (2 if committed else 1)
    marker = reopened.state().loading is not None
    # The marker exists from begin_load's rename until commit_load's: exactly the "died while loading" window.
    # steps 9 and 10: commit_load's write_state and rename_state, after begin_load's rename (8) landed.
    assert marker == (crash_at in (9, 10)), (crash_at, steps[crash_at])
    died = reopened.recover()
    assert (died is not None) == marker and reopened.is_blocked(2, entry.sha256) == marker
    after = assert_loadable(reopened)
    assert after.version == (2 if committed else 1) and reopened.state().loading is None


def test_fail_load_of_a_trial_keeps_current_and_of_current_restores_previous(
    tmp_path: Path, onnx_v1: Path, onnx_v2: Path, onnx_v3: Path
) -> None:
    store = ModelStore(tmp_path / "store")
    store.install(onnx_v1, entry_for(store, onnx_v1, 1))
    store.install(onnx_v2, entry_for(store, onnx_v2, 2))
    trial = entry_for(store, onnx_v3, 3)
    store.stage(onnx_v3, trial)
    assert store.state().current.version == 2 and store.usable().version == 2  # type: ignore[union-attr]
    state = store.fail_load(trial, "probe failed")
    assert state.current.version == 2 and state.previous.version == 1 and state.trial is None  # type: ignore[union-attr]
    assert store.is_blocked(3, trial.sha256) and not (store.models_dir / trial.file).exists()
    state = store.fail_load(state.current, "died")  # type: ignore[arg-type]
    assert state.current.version == 1 and state.previous is None  # type: ignore[union-attr]
