"""TF-free training logic: metrics math, label-map bookkeeping, head carry-over, class weights."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from edgeloop.metrics import (
    confusion_matrix,
    confusion_png,
    evaluate,
    expected_calibration_error,
    macro_f1,
    top_k_accuracy,
)
from pipelines.train.errors import InvalidInput
from pipelines.train.labels import carry_over_head, check_warm_start, class_weights, compare_label_maps
from pipelines.train.options import new_run_id
from pipelines.train.settings import TrainSettings


def test_evaluate_matches_hand_computed_metrics() -> None:
    # 3 classes; true 0,0,1,1,2,2; predicted 0,1,1,1,2,0
    probs = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.3, 0.6, 0.1],
            [0.1, 0.7, 0.2],
            [0.2, 0.5, 0.3],
            [0.1, 0.2, 0.7],
            [0.5, 0.1, 0.4],
        ]
    )
    y = np.array([0, 0, 1, 1, 2, 2])
    r = evaluate(probs, y, ["a", "b", "c"])
    assert r.accuracy == pytest.approx(4 / 6)
    assert r.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    a, b, c = r.classes
    assert [a.precision, a.recall] == pytest.approx([0.5, 0.5])
    assert [b.precision, b.recall, b.f1] == pytest.approx([2 / 3, 1.0, 0.8])
    assert [c.precision, c.recall, c.f1] == pytest.approx([1.0, 0.5, 2 / 3])
    assert r.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # top-3 of 3 classes is always right; top-1 is accuracy
    assert r.top3_accuracy == 1.0
    assert top_k_accuracy(probs, y, 1) == pytest.approx(r.accuracy)
    # every true class is within its row's top two
    assert top_k_accuracy(probs, y, 2) == 1.0
    assert r.recall_of("b") == 1.0


def test_top_k_counts_second_choice() -> None:
    probs = np.array([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]])
    assert top_k_accuracy(probs, np.array([1, 2]), 2) == pytest.approx(0.5)


def test_macro_f1_ignores_classes_without_support_and_never_nans() -> None:
    y = np.array([0, 0, 1])
    pred = np.array([0, 0, 2])  # class 2 has no support but is predicted; class 1 never predicted
    # class 0: f1 1.0; class 1: f1 0 -> macro over present classes {0, 1} = 0.5
    assert macro_f1(y, pred, 3) == pytest.approx(0.5)
    assert macro_f1(y, pred, 3, classes=[0]) == pytest.approx(1.0)


def test_ece_is_zero_when_confidence_equals_accuracy_and_large_when_overconfident() -> None:
    # Two predictions at confidence 0.5, one right one wrong: perfectly calibrated.
    calibrated = np.array([[0.5, 0.5], [0.5, 0.5]])
    assert expected_calibration_error(calibrated, np.array([0, 1])) == pytest.approx(0.0)
    over = np.array([[0.99, 0.01], [0.99, 0.01]])
    assert expected_calibration_error(over, np.array([1, 1])) == pytest.approx(0.99)


def test_confusion_matrix_and_png() -> None:
    cm = confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2)
    assert cm.tolist() == [[1, 0], [1, 1]]
    r = evaluate(np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]), np.array([0, 1, 1]), ["x", "y"])
    png = confusion_png(r)
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.width > 150


def test_evaluate_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="do not match"):
        evaluate(np.ones((2, 3)) / 3, np.array([0, 1]), ["a", "b"])


def test_grown_label_map_keeps_indices_and_carries_head_columns() -> None:
    change = compare_label_maps(["a", "b", "c"], ["a", "b", "c", "d", "e"])
    assert change.carried == {0: 0, 1: 1, 2: 2}
    assert change.added == ("d", "e") and not change.removed and not change.moved
    check_warm_start(change, allow_removed=False, parent="p")
    rng = np.random.default_rng(0)
    old_k, old_b = rng.normal(size=(8, 3)).astype(np.float32), np.array([0.1, 0.2, 0.3], np.float32)
    new_k, new_b = rng.normal(size=(8, 5)).astype(np.float32), np.zeros(5, np.float32)
    k, b = carry_over_head(old_k, old_b, new_k, new_b, change.carried)
    np.testing.assert_array_equal(k[:, :3], old_k)
    np.testing.assert_array_equal(k[:, 3:], new_k[:, 3:])
    np.testing.assert_allclose(b, [0.1, 0.2, 0.3, 0.2, 0.2])


def test_shrunk_label_map_is_refused_unless_allowed() -> None:
    change = compare_label_maps(["a", "b", "c"], ["a", "b"])
    assert change.removed == ("c",)
    with pytest.raises(InvalidInput, match=r"lost 1 class.*'c'.*--allow-removed-classes"):
        check_warm_start(change, allow_removed=False, parent="runs/x")
    check_warm_start(change, allow_removed=True, parent="runs/x")


def test_moved_class_is_refused() -> None:
    change = compare_label_maps(["a", "b"], ["b", "a"])
    with pytest.raises(InvalidInput, match="different index"):
        check_warm_start(change, allow_removed=True, parent="runs/x")


def test_carry_over_refuses_other_feature_width() -> None:
    with pytest.raises(InvalidInput, match="alpha"):
        carry_over_head(np.zeros((4, 2)), np.zeros(2), np.zeros((8, 3)), np.zeros(3), {0: 0})


def test_class_weights_are_inverse_frequency_with_mean_one() -> None:
    w = class_weights([10, 30, 0])
    assert w[0] == pytest.approx(2.0) and w[1] == pytest.approx(2 / 3) and w[2] == 0.0
    assert np.mean([w[0], w[1]]) == pytest.approx(4 / 3)  # weighted examples sum to the count: 10*2 + 30*2/3 = 40
    assert 10 * w[0] + 30 * w[1] == pytest.approx(40)
    assert class_weights([]) == {}


def test_run_ids_sort_by_time_and_are_unique() -> None:
    import datetime as dt

    early = new_run_id(dt.datetime(2026, 11, 23, 7, 15, tzinfo=dt.UTC))
    late = new_run_id(dt.datetime(2026, 11, 23, 7, 16, tzinfo=dt.UTC))
    assert early.startswith("20261123T071500Z-") and len(early) == 23
    assert early < late
    assert len({new_run_id() for _ in range(50)}) == 50


def test_settings_refuse_unknown_alpha(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeloop.errors import ConfigError
    from pipelines.train.settings import get_train_settings

    monkeypatch.setenv("EDGELOOP_TRAIN_ALPHA", "0.6")
    get_train_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"EDGELOOP_TRAIN_ALPHA='0.6'"):
            get_train_settings()
    finally:
        get_train_settings.cache_clear()
    assert TrainSettings(alpha=0.5).alpha == 0.5


def test_a_class_without_eval_examples_is_invalid_input() -> None:
    from pipelines.train.core import _check_counts
    from pipelines.train.source import DatasetView

    view = DatasetView(
        uri="d/v0003",
        version="v0003",
        labels=("rose-soap", "mint-balm", "oat-scrub"),
        shards={"train": ("a",), "eval": ("b",)},
        counts={"train": {"rose-soap": 5, "mint-balm": 5, "oat-scrub": 5}},
    )
    with pytest.raises(InvalidInput, match=r"v0003 has no eval examples for class\(es\) \['oat-scrub'\]; add photos"):
        _check_counts(view, np.array([0, 1, 1]))
    assert _check_counts(view, np.array([0, 1, 2])) == [5, 5, 5]
    starved = DatasetView(view.uri, view.version, view.labels, view.shards, {"train": {"rose-soap": 5, "mint-balm": 5}})
    with pytest.raises(InvalidInput, match=r"no train examples for class\(es\) \['oat-scrub'\]"):
        _check_counts(starved, np.array([0, 1, 2]))


BF16_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
PLAIN_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"


def test_auto_precision_is_bfloat16_only_on_a_cpu_with_native_bf16() -> None:
    from pipelines.train.compute import resolve

    auto = TrainSettings(precision="auto")
    on_bf16 = resolve(auto, BF16_CPU)
    assert (on_bf16.precision, on_bf16.native_bf16, on_bf16.cpu_flags) == (
        "mixed_bfloat16",
        True,
        ["avx512_bf16", "amx_bf16"],
    )
    assert resolve(auto, PLAIN_CPU).precision == "float32"
    # An explicit choice wins over the CPU, and the default stays float32 (bf16 measured slower, issue 19).
    assert resolve(TrainSettings(precision="float32"), BF16_CPU).precision == "float32"
    assert resolve(TrainSettings(), BF16_CPU).precision == "float32"


def test_xla_is_recorded_off_under_op_determinism() -> None:
    from pipelines.train.compute import resolve

    # Keras quietly drops jit_compile when op determinism is on; the record says what really ran.
    assert resolve(TrainSettings(jit_compile=True, deterministic=True), PLAIN_CPU).jit_compile is False
    assert resolve(TrainSettings(jit_compile=True, deterministic=False), PLAIN_CPU).jit_compile is True


def test_each_start_has_its_recipe_of_phases() -> None:
    from pipelines.train.core import _phases
    from pipelines.train.options import TrainOptions

    s = TrainSettings(epochs=9, head_epochs=2, warm_start_epochs=4, fine_tune_layers=30)

    def recipe(**kw: object) -> list[tuple[str, int | None, int, float, str]]:
        options = TrainOptions(dataset="d", settings=s, **kw)  # type: ignore[arg-type]
        return [(p.name, p.unfreeze, p.epochs, p.learning_rate, p.setting) for p in _phases(options)]

    assert recipe() == [("train", 0, 9, s.learning_rate, "learning_rate")]
    assert recipe(warm_start="runs/a") == [
        ("head", None, 2, s.head_learning_rate, "head_learning_rate"),
        ("finetune", 0, 4, s.warm_start_learning_rate, "warm_start_learning_rate"),
    ]
    assert recipe(weights="imagenet") == [
        ("head", None, 2, s.head_learning_rate, "head_learning_rate"),
        ("finetune", 30, 9, s.fine_tune_learning_rate, "fine_tune_learning_rate"),
    ]
    no_head = TrainOptions(dataset="d", weights="imagenet", settings=s.model_copy(update={"head_epochs": 0}))
    assert [p.name for p in _phases(no_head)] == ["finetune"]
