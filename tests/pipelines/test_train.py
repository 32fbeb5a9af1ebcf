"""Training end to end on a tiny synthetic catalogue ingested by the real Beam job.

Two models are trained once per session (see conftest_train): from scratch on v0001,
then warm-started on v0002, which adds a product. The other tests train only briefly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.pipelines.conftest_train import WARM_SETTINGS, Runs, TrainEnv, runs, train_env

pytestmark = [pytest.mark.tf, pytest.mark.slow]
__all__ = ["runs", "train_env"]  # session fixtures, imported explicitly


def count(env: TrainEnv, sql: str) -> int:
    from edgeloop import warehouse

    with warehouse.connect(env.warehouse) as wh:
        return int(wh.query(sql)[0]["n"])


def test_base_run_writes_every_artifact_and_row(train_env: TrainEnv, runs: Runs) -> None:
    from edgeloop import warehouse
    from edgeloop.card import read_card

    base = runs.base
    run_dir = Path(base.run_dir)
    for name in (
        "model.keras",
        "saved_model/saved_model.pb",
        "model_card.json",
        "eval.json",
        "confusion.png",
        "history.json",
        "run.json",
    ):
        assert (run_dir / name).exists(), name
    card = read_card(run_dir)
    assert card.labels == base.labels and len(card.labels) == 3
    assert (card.input.height, card.input.width, card.input.dtype) == (96, 96, "float32")
    assert card.lineage.dataset_version == "v0001" and card.lineage.run_id == base.run_id
    assert card.lineage.backbone_source == "none" and card.lineage.parent_model is None
    assert card.metrics["macro_f1"] == pytest.approx(base.eval.macro_f1)
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
    with warehouse.connect(train_env.warehouse) as wh:
        row = wh.query("SELECT * FROM training_runs WHERE run_id = ?", [base.run_id])[0]
        assert row["status"] == "succeeded" and row["dataset_version"] == "v0001"
        assert row["macro_f1"] == pytest.approx(base.eval.macro_f1) and row["finished_at"] is not None
        assert json.loads(row["settings"])["alpha"] == 0.35
        epochs = wh.query("SELECT * FROM epoch_metrics WHERE run_id = ? ORDER BY epoch", [base.run_id])
        assert len(epochs) == len(history) and epochs[0]["phase"] == "train"
        # Eval every epoch in the first half of the schedule, then every eval_every (2) epochs, and the last.
        assert [e["epoch"] for e in epochs if e["val_macro_f1"] is not None] == [1, 2, 3, 4, 6, 8]
        # What the run computed with is recorded beside the settings, and on the card.
        assert json.loads(row["settings"])["compute"]["precision"] == "float32"
        assert card.training["compute"] == json.loads(row["settings"])["compute"]
        classes = wh.query("SELECT * FROM class_metrics WHERE run_id = ? ORDER BY label_index", [base.run_id])
        assert [c["label"] for c in classes] == base.labels
    # A from-scratch MobileNetV2 needs far more steps than this test affords to be good
    # (bench/train.py measures quality); here only the bookkeeping must be right.
    assert base.eval.examples == sum(c.support for c in base.eval.classes) > 0


def test_exported_savedmodel_takes_raw_pixels_and_matches_keras(train_env: TrainEnv, runs: Runs) -> None:
    import tensorflow as tf

    from edgeloop.examples import split_arrays
    from edgeloop.runs import load_model, predict

    images, _, names = split_arrays(train_env.v1, size=(96, 96), limit=8)
    assert images.dtype == np.uint8 and images.shape == (8, 96, 96, 3) and names == runs.base.labels
    keras_probs = predict(load_model(runs.base.model_uri), images)
    served = tf.saved_model.load(runs.base.saved_model_uri)
    sm_probs = served.serve(tf.constant(images, dtype=tf.float32)).numpy()
    np.testing.assert_allclose(sm_probs, keras_probs, atol=1e-5)
    np.testing.assert_allclose(sm_probs.sum(axis=1), 1.0, atol=1e-5)
    # No augmentation op may be left in the exported graph.
    graph_ops = {op.type for f in served.serve.concrete_functions for op in f.graph.get_operations()}
    assert not {"ImageProjectiveTransformV3", "StatelessRandomUniformV2", "RandomUniform"} & graph_ops


def test_split_arrays_resize_like_the_edge_runtime(train_env: TrainEnv) -> None:
    import io

    import tensorflow as tf
    from PIL import Image

    from edgeloop.examples import split_arrays
    from pipelines.train.source import open_dataset

    images, _, _ = split_arrays(train_env.v1, size=(64, 64), limit=4)
    raw = next(
        iter(tf.data.TFRecordDataset(list(open_dataset(train_env.v1).shards["eval"])[:1], compression_type="GZIP"))
    )
    example = tf.train.Example.FromString(raw.numpy())
    jpeg = example.features.feature["image/encoded"].bytes_list.value[0]
    pil = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB").resize((64, 64), Image.Resampling.BILINEAR))
    diff = np.abs(images[0].astype(int) - pil.astype(int))
    # Same bilinear antialiased resize; decoders and rounding differ by a level or two at most.
    assert diff.mean() < 1.5 and diff.max() <= 16


def test_warm_start_grows_the_label_map_and_keeps_old_classes(train_env: TrainEnv, runs: Runs) -> None:
    from edgeloop.card import read_card

    base, warm = runs.base, runs.warm
    assert warm.labels[:3] == base.labels and len(warm.labels) == 4
    assert warm.backbone_source == f"warm_start:{base.run_dir}"
    assert [h.phase for h in warm.history][:1] == ["head"] and {h.phase for h in warm.history} == {"head", "finetune"}
    card = read_card(warm.run_dir)
    assert card.lineage.parent_model == base.run_dir and card.lineage.dataset_version == "v0002"
    old_base = np.mean([c.recall for c in base.eval.classes])
    old_warm = np.mean([c.recall for c in warm.eval.classes[:3]])
    assert old_warm >= old_base - 0.25, (old_base, old_warm)
    assert warm.eval.classes[3].support > 0


def test_warm_start_carries_backbone_and_head_by_index(train_env: TrainEnv, runs: Runs) -> None:
    from edgeloop.examples import split_arrays
    from edgeloop.runs import load_model, predict
    from pipelines.train.labels import compare_label_maps
    from pipelines.train.model import BACKBONE, HEAD, build_model, warm_start

    parent = load_model(runs.base.model_uri)
    child = build_model(5, alpha=0.35, size=96, dropout=0.2, weights=None, pretrained=True)
    fresh_new_columns = child.get_layer(HEAD).get_weights()[0][:, 3:].copy()
    change = compare_label_maps(runs.base.labels, [*runs.base.labels, "new-a", "new-b"])
    warm_start(child, parent, dict(change.carried))
    old_k, old_b = parent.get_layer(HEAD).get_weights()
    new_k, new_b = child.get_layer(HEAD).get_weights()
    np.testing.assert_array_equal(new_k[:, :3], old_k)
    np.testing.assert_array_equal(new_b[:3], old_b)
    np.testing.assert_array_equal(new_k[:, 3:], fresh_new_columns)
    for a, b in zip(parent.get_layer(BACKBONE).get_weights(), child.get_layer(BACKBONE).get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # Before any training, the grown model ranks the old classes exactly as its parent did.
    images, _, _ = split_arrays(train_env.v1, size=(96, 96))
    parent_probs, child_probs = predict(parent, images), predict(child, images)
    np.testing.assert_array_equal(child_probs[:, :3].argmax(axis=1), parent_probs.argmax(axis=1))
    np.testing.assert_allclose(
        child_probs[:, :3] / child_probs[:, :3].sum(axis=1, keepdims=True), parent_probs, rtol=1e-4, atol=1e-6
    )


def test_same_seed_gives_the_same_metrics(train_env: TrainEnv, runs: Runs) -> None:
    from pipelines.train.core import train
    from pipelines.train.options import TrainOptions

    again = train(
        TrainOptions(
            dataset=train_env.v2,
            warm_start=runs.base.run_dir,
            runs_root=train_env.runs,
            warehouse=train_env.warehouse,
            settings=WARM_SETTINGS,
        )
    )
    assert again.run_id != runs.warm.run_id
    assert again.eval.macro_f1 == pytest.approx(runs.warm.eval.macro_f1, abs=0.02)
    assert again.eval.accuracy == pytest.approx(runs.warm.eval.accuracy, abs=0.02)
    first = [h.loss or float("nan") for h in runs.warm.history]
    second = [h.loss or float("nan") for h in again.history]
    np.testing.assert_allclose(second, first, rtol=1e-3)


def test_nan_loss_stops_the_run_and_keeps_its_rows(train_env: TrainEnv, runs: Runs) -> None:
    from edgeloop import warehouse
    from pipelines.train.core import train
    from pipelines.train.errors import NanLoss
    from pipelines.train.options import TrainOptions

    exploding = WARM_SETTINGS.model_copy(update={"head_epochs": 2, "head_learning_rate": 1e38, "class_weights": False})
    with pytest.raises(
        NanLoss,
        match=r"loss became (nan|inf|-inf) in the head phase at epoch 1 \(learning rate 1e\+38\); lower the learning rate \(EDGELOOP_TRAIN_HEAD_LEARNING_RATE\)",
    ):
        train(
            TrainOptions(
                dataset=train_env.v1,
                warm_start=runs.base.run_dir,
                runs_root=train_env.runs,
                warehouse=train_env.warehouse,
                settings=exploding,
                run_id="nan-run",
            )
        )
    with warehouse.connect(train_env.warehouse) as wh:
        row = wh.query("SELECT * FROM training_runs WHERE run_id = 'nan-run'")[0]
        assert row["status"] == "nan_loss" and "lower the learning rate" in row["message"]
        assert row["finished_at"] is not None and row["epochs"] == 1
        epochs = wh.query("SELECT * FROM epoch_metrics WHERE run_id = 'nan-run'")
        assert len(epochs) == 1 and epochs[0]["loss"] is None and epochs[0]["phase"] == "head"
    assert not (Path(train_env.runs) / "nan-run" / "model.keras").exists()


def test_shrunk_label_map_is_refused_and_recorded(train_env: TrainEnv, runs: Runs) -> None:
    from edgeloop import warehouse
    from pipelines.train.core import train
    from pipelines.train.errors import InvalidInput
    from pipelines.train.options import TrainOptions

    lost = runs.warm.labels[3]
    with pytest.raises(InvalidInput, match=rf"lost 1 class\(es\).*'{lost}'.*--allow-removed-classes"):
        train(
            TrainOptions(
                dataset=train_env.v1,
                warm_start=runs.warm.run_dir,
                runs_root=train_env.runs,
                warehouse=train_env.warehouse,
                settings=WARM_SETTINGS,
                run_id="shrunk-run",
            )
        )
    with warehouse.connect(train_env.warehouse) as wh:
        row = wh.query("SELECT status, message, dataset_version FROM training_runs WHERE run_id = 'shrunk-run'")[0]
    assert row["status"] == "invalid_input" and lost in row["message"] and row["dataset_version"] == "v0001"


def test_cli_reports_a_malformed_warm_start_card_in_one_message(
    train_env: TrainEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgeloop import warehouse
    from edgeloop.cli import main

    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "model.keras").write_bytes(b"never loaded: the card is read first")
    (parent / "model_card.json").write_text('{"name": "products"}', encoding="utf-8")
    code = main(["train", "--dataset", train_env.v1, "--warm-start", str(parent), "--run-id", "bad-parent"])
    captured = capsys.readouterr()
    err = "".join(captured.err.split())  # Rich folds long lines, even inside a path
    assert code == 2 and err.count("error:") == 1
    assert f"{parent / 'model_card.json'}isnotamodelcard" in err and "validationerror" not in err
    assert "Traceback" not in captured.err + captured.out
    with warehouse.connect() as wh:
        row = wh.query("SELECT status, message FROM training_runs WHERE run_id = 'bad-parent'")[0]
    assert row["status"] == "invalid_input" and "\n" not in row["message"]


def test_missing_dataset_is_invalid_input(train_env: TrainEnv) -> None:
    from edgeloop import warehouse
    from pipelines.train.core import train
    from pipelines.train.errors import InvalidInput
    from pipelines.train.options import TrainOptions

    missing = str(train_env.root / "datasets" / "v0042")
    with pytest.raises(InvalidInput, match=r"v0042.*does not exist"):
        train(
            TrainOptions(dataset=missing, runs_root=train_env.runs, warehouse=train_env.warehouse, run_id="missing-run")
        )
    with warehouse.connect(train_env.warehouse) as wh:
        row = wh.query("SELECT status, dataset_version FROM training_runs WHERE run_id = 'missing-run'")[0]
    assert row == {"status": "invalid_input", "dataset_version": "v0042"}


def test_recording_a_run_again_leaves_the_warehouse_unchanged(train_env: TrainEnv, runs: Runs) -> None:
    from edgeloop import warehouse
    from pipelines.train.core import record_run

    sql = {
        "training_runs": "SELECT COUNT(*) AS n FROM training_runs",
        "epoch_metrics": "SELECT COUNT(*) AS n FROM epoch_metrics",
        "class_metrics": "SELECT COUNT(*) AS n FROM class_metrics",
    }
    before = {k: count(train_env, q) for k, q in sql.items()}
    with warehouse.connect(train_env.warehouse) as wh:
        snapshot = wh.query("SELECT * FROM class_metrics WHERE run_id = ? ORDER BY label", [runs.base.run_id])
    record_run(runs.base.run_dir, train_env.warehouse)
    record_run(runs.base.run_dir, train_env.warehouse)
    assert {k: count(train_env, q) for k, q in sql.items()} == before
    with warehouse.connect(train_env.warehouse) as wh:
        assert wh.query("SELECT * FROM class_metrics WHERE run_id = ? ORDER BY label", [runs.base.run_id]) == snapshot


def test_cli_train_reports_a_missing_dataset_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from edgeloop.cli import main

    code = main(["train", "--dataset", "nowhere/v0009"])
    err = capsys.readouterr().err
    assert code == 2
    assert "error:" in err and "nowhere/v0009" in err and "Traceback" not in err


@pytest.mark.parametrize("freeze", [True, False])
def test_fine_tuning_the_whole_backbone_freezes_batchnorm_only_for_a_foreign_backbone(freeze: bool) -> None:
    import keras

    from pipelines.train.model import BACKBONE, build_model, set_trainable

    model = build_model(3, alpha=0.35, size=96, dropout=0.2, weights=None, pretrained=False)
    set_trainable(model, backbone_layers=0, freeze_batchnorm=freeze)
    layers = model.get_layer(BACKBONE).layers
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    convs = [layer for layer in layers if isinstance(layer, keras.layers.Conv2D)]
    assert norms and convs and all(layer.trainable for layer in convs)
    assert all(layer.trainable is not freeze for layer in norms)
    set_trainable(model, backbone_layers=None)
    assert not model.get_layer(BACKBONE).trainable
