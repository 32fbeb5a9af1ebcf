"""The fused BatchNorm training layer computes what the stock Keras layer computes, and never reaches a saved model."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tests.pipelines.conftest_train import Runs, TrainEnv, runs, train_env

pytestmark = [pytest.mark.tf]

__all__ = ["runs", "train_env"]  # fixtures, imported for pytest


def _pair(momentum: float = 0.9) -> tuple[object, object]:
    """A stock and a fused layer with the same (non-trivial) weights."""
    import keras

    from pipelines.train.fused import FusedBatchNormalization

    stock = keras.layers.BatchNormalization(momentum=momentum, epsilon=1e-3)
    fused = FusedBatchNormalization.from_config(stock.get_config())
    stock.build((None, 5, 5, 8))
    fused.build((None, 5, 5, 8))
    rng = np.random.default_rng(3)
    weights = [
        rng.uniform(0.5, 2.0, 8).astype("float32"),  # gamma
        rng.normal(0, 1, 8).astype("float32"),  # beta
        rng.normal(0, 1, 8).astype("float32"),  # moving mean
        rng.uniform(0.5, 2.0, 8).astype("float32"),  # moving variance
    ]
    stock.set_weights(weights)
    fused.set_weights(weights)
    return stock, fused


def test_the_fused_layer_has_the_stock_variables_in_their_order() -> None:
    stock, fused = _pair()
    assert [v.path.rsplit("/", 1)[-1] for v in fused.weights] == [v.path.rsplit("/", 1)[-1] for v in stock.weights]


def test_inference_matches_the_stock_layer() -> None:
    stock, fused = _pair()
    x = np.random.default_rng(0).normal(2.0, 3.0, (4, 5, 5, 8)).astype("float32")
    np.testing.assert_allclose(fused(x, training=False), stock(x, training=False), rtol=1e-5, atol=1e-5)


def test_training_matches_the_stock_layer_outputs_gradients_and_moving_statistics() -> None:
    import tensorflow as tf

    stock, fused = _pair(momentum=0.9)
    x = tf.constant(np.random.default_rng(1).normal(2.0, 3.0, (4, 5, 5, 8)).astype("float32"))
    w = tf.constant(np.random.default_rng(2).normal(0, 1, (4, 5, 5, 8)).astype("float32"))
    results = []
    for layer in (stock, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * w)
        grads = tape.gradient(loss, [x, *layer.trainable_variables])
        results.append((y.numpy(), [g.numpy() for g in grads], [v.numpy() for v in layer.non_trainable_variables]))
    (y0, g0, s0), (y1, g1, s1) = results
    np.testing.assert_allclose(y1, y0, rtol=1e-4, atol=1e-4)
    for a, b in zip(g1, g0, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
    # Both moving averages take one step of 0.1 towards the batch's statistics; the kernel's
    # variance carries Bessel's correction (n / (n - 1), n = 100 values per channel here).
    start_mean, start_var = _pair()[1].get_weights()[2:]  # type: ignore[attr-defined]
    batch = x.numpy().reshape(-1, 8)
    n = len(batch)
    np.testing.assert_allclose(s0[0], 0.9 * start_mean + 0.1 * batch.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s1[0], s0[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s0[1], 0.9 * start_var + 0.1 * batch.var(0), rtol=1e-4)
    np.testing.assert_allclose(s1[1], 0.9 * start_var + 0.1 * batch.var(0) * n / (n - 1), rtol=1e-4)


def test_what_the_kernel_does_not_cover_runs_the_stock_path() -> None:
    import keras

    from pipelines.train.fused import FusedBatchNormalization

    layer = FusedBatchNormalization(axis=1)  # channels first: not the fused kernel's NHWC
    x = np.random.default_rng(0).normal(0, 1, (2, 3, 4, 4)).astype("float32")
    stock = keras.layers.BatchNormalization(axis=1)
    np.testing.assert_allclose(layer(x, training=True), stock(x, training=True), rtol=1e-5, atol=1e-5)


def test_fuse_keeps_names_and_weights_and_swaps_only_batchnorm() -> None:
    import keras

    from pipelines.train.fused import FusedBatchNormalization, fuse

    backbone = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    fused = fuse(backbone)
    assert fused.name == backbone.name  # the classifier finds its backbone by name

    def named(model: keras.Model) -> list[str]:
        return [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]

    assert named(fused) == named(backbone)
    for a, b in zip(fused.get_weights(), backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    swapped = [type(layer) for layer in fused.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert swapped and set(swapped) == {FusedBatchNormalization}


@pytest.mark.slow
def test_a_run_trained_fused_saves_only_stock_keras_layers(train_env: TrainEnv, runs: Runs) -> None:
    from edgeloop.card import read_card

    card = read_card(runs.base.run_dir)
    assert card.training["settings"]["fused_kernels"] is True
    with zipfile.ZipFile(f"{runs.base.run_dir}/model.keras") as archive:
        config = archive.read("config.json").decode()
    assert "FusedBatchNormalization" not in config and "pipelines" not in config
    assert json.loads(config)["class_name"] == "Functional"


def test_the_fused_adam_makes_keras_adams_updates() -> None:
    import keras
    import tensorflow as tf

    from pipelines.train import fused

    rng = np.random.default_rng(5)
    start = rng.normal(0, 1, (3, 4)).astype("float32")
    grads = [rng.normal(0, 1, (3, 4)).astype("float32") for _ in range(5)]
    schedule = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=5, warmup_target=None)
    finals = []
    for optimizer in (keras.optimizers.Adam(schedule), fused.Adam(schedule)):
        variable = keras.Variable(start)
        optimizer.build([variable])
        for g in grads:
            optimizer.apply_gradients([(tf.constant(g), variable)])
        finals.append(variable.numpy())
    assert not np.allclose(finals[1], start)
    np.testing.assert_allclose(finals[1], finals[0], rtol=1e-5, atol=1e-6)
