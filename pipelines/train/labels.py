"""Label-map bookkeeping for warm starts and imbalanced catalogues: pure Python, no TensorFlow.

The contract: a class keeps its index forever and new products are appended. A warm
start therefore maps each old class to the same index in the new head; anything else
(a class moved or vanished) is reported and refused unless explicitly allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from pipelines.train.errors import InvalidInput


@dataclasses.dataclass(frozen=True)
class LabelMapChange:
    """How a new label map relates to the one an earlier model was trained on."""

    old: tuple[str, ...]
    new: tuple[str, ...]
    carried: Mapping[int, int]  # old index -> new index, for classes both maps hold
    added: tuple[str, ...]
    removed: tuple[str, ...]
    moved: tuple[str, ...]  # present in both but at a different index

    @property
    def shared(self) -> tuple[str, ...]:
        return tuple(self.old[i] for i in sorted(self.carried))


def compare_label_maps(old: Sequence[str], new: Sequence[str]) -> LabelMapChange:
    """Match classes by name between an old and a new label map."""
    new_index = {name: i for i, name in enumerate(new)}
    old_set = set(old)
    carried = {i: new_index[name] for i, name in enumerate(old) if name in new_index}
    return LabelMapChange(
        old=tuple(old),
        new=tuple(new),
        carried=carried,
        added=tuple(name for name in new if name not in old_set),
        removed=tuple(name for name in old if name not in new_index),
        moved=tuple(old[i] for i, j in carried.items() if i != j),
    )


def check_warm_start(change: LabelMapChange, *, allow_removed: bool, parent: str) -> None:
    """Refuse label maps that break the index contract; removed classes need an explicit flag."""
    if change.moved:
        raise InvalidInput(
            f"classes {list(change.moved)} have a different index in the dataset than in {parent}; "
            "the label map must keep old indices (re-run ingest incrementally from the parent's dataset)"
        )
    if change.removed and not allow_removed:
        raise InvalidInput(
            f"the dataset's label map lost {len(change.removed)} class(es) that {parent} knows: "
            f"{list(change.removed)}; pass --allow-removed-classes if the products were discontinued"
        )


def carry_over_head(
    old_kernel: npt.NDArray[np.floating],
    old_bias: npt.NDArray[np.floating],
    new_kernel: npt.NDArray[np.floating],
    new_bias: npt.NDArray[np.floating],
    carried: Mapping[int, int],
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
    """The new head's weights with each old class's column copied to its new index.

    New classes keep their fresh initialisation; their bias starts at the old classes'
    mean so a new class is neither favoured nor starved before it has trained.
    """
    if old_kernel.shape[0] != new_kernel.shape[0]:
        raise InvalidInput(
            f"the parent head takes {old_kernel.shape[0]} features, the new one {new_kernel.shape[0]}; "
            "warm start needs the same backbone width (alpha)"
        )
    kernel = new_kernel.copy()
    bias = new_bias.copy()
    carried_new = set(carried.values())
    fresh = [j for j in range(kernel.shape[1]) if j not in carried_new]
    if carried:
        bias[fresh] = float(np.mean([old_bias[i] for i in carried]))
    for i, j in carried.items():
        kernel[:, j] = old_kernel[:, i]
        bias[j] = old_bias[i]
    return kernel, bias


def class_weights(counts: Sequence[int]) -> dict[int, float]:
    """Inverse-frequency weights (mean 1 over present classes), as Keras' `class_weight` takes them."""
    counts_arr = np.asarray(counts, dtype=np.float64)
    present = counts_arr > 0
    if not present.any():
        return {}
    k = int(present.sum())
    total = float(counts_arr[present].sum())
    return {i: (total / (k * c) if c > 0 else 0.0) for i, c in enumerate(counts_arr.tolist())}
