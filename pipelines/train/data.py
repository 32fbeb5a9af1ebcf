"""Training's input pipeline: the decoded Examples (`edgeloop.examples`) shuffled, augmented and batched.

Augmentation runs here, in the input pipeline, rather than as layers of the model: the
saved and exported model then holds no random ops at all, so conversion (TFLite, ONNX)
sees exactly the inference graph, and the augmentation work overlaps the training step
on tf.data's threads instead of serialising with it. It is one fused affine warp per
image (see `augment_batch`), not a stack of Keras preprocessing layers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from edgeloop.examples import decoded_dataset
from pipelines.train.settings import AugmentSettings

log = logging.getLogger(__name__)


def configure_tf(*, threads: int = 0, seed: int | None = None, deterministic: bool = False) -> None:
    """Thread counts, seeds and op determinism; call before building models or datasets."""
    import keras
    import tensorflow as tf

    if threads:
        # Thread pools can only be sized before TF initialises its runtime; later calls raise.
        with contextlib.suppress(RuntimeError):
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def augment_batch(images: Any, seed: Any, settings: AugmentSettings) -> Any:
    """Random flip, rotation, zoom and shift as ONE affine warp per image, then brightness and contrast.

    Keras' preprocessing layers warp once per layer (three resamplings for rotation, zoom
    and translation); composing the matrices first does the same distortion with a
    third of the work and one interpolation blur instead of three, which is what keeps
    the input pipeline off the critical path on a 2-core machine. Stateless random ops
    keyed by `seed` (a per-batch pair from `tf.data.Dataset.random`) make it
    reproducible and safe to run in parallel.
    """
    import math

    import tensorflow as tf

    shape = tf.shape(images)
    n, h, w = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, num=7)

    def uniform(i: int, lo: float, hi: float) -> Any:
        return tf.random.stateless_uniform([n], seed=seeds[i], minval=lo, maxval=hi)

    ones = tf.ones([n])
    flip_x = ones
    flip_y = ones
    coin = uniform(0, 0.0, 1.0)
    if settings.flip in ("horizontal", "horizontal_and_vertical"):
        flip_x = tf.where(coin < 0.5, -ones, ones)
    if settings.flip in ("vertical", "horizontal_and_vertical"):
        flip_y = tf.where(tf.math.floormod(coin * 4.0, 1.0) < 0.5, -ones, ones)
    angle = uniform(1, -settings.rotation, settings.rotation) * 2.0 * math.pi
    zoom = uniform(2, 1.0 - settings.zoom, 1.0 + settings.zoom)
    tx = uniform(3, -settings.translation, settings.translation) * w
    ty = uniform(6, -settings.translation, settings.translation) * h
    # Output pixel p maps to input pixel c + M (p - c - t), with M = flip · rotate(-angle) / zoom.
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    m00, m01 = cos * flip_x, sin * flip_x
    m10, m11 = -sin * flip_y, cos * flip_y
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    ox, oy = cx + tx, cy + ty
    transforms = tf.stack(
        [m00, m01, cx - m00 * ox - m01 * oy, m10, m11, cy - m10 * ox - m11 * oy, tf.zeros([n]), tf.zeros([n])],
        axis=1,
    )
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=shape[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    if settings.brightness or settings.contrast:
        # Brightness shift b, then contrast f about the image mean m + b, is one multiply-add:
        # ((x + b) - (m + b)) f + (m + b) = f x + (m (1 - f) + b). One pass over the pixels instead
        # of five; elementwise passes were most of the augmentation's cost after the warp.
        shift = uniform(4, -settings.brightness, settings.brightness) * 255.0 if settings.brightness else 0.0
        factor = uniform(5, 1.0 - settings.contrast, 1.0 + settings.contrast) if settings.contrast else ones
        factor = factor[:, None, None, None]
        mean = tf.reduce_mean(out, axis=[1, 2], keepdims=True)
        out = out * factor + (mean * (1.0 - factor) + tf.reshape(shift, [-1, 1, 1, 1]))
    return tf.clip_by_value(out, 0.0, 255.0)


def training_dataset(
    paths: Sequence[str],
    *,
    size: tuple[int, int],
    n_classes: int,
    batch_size: int,
    seed: int,
    augment: AugmentSettings | None = None,
    cache: bool = True,
    shuffle_buffer: int = 4096,
    examples: int | None = None,
) -> Any:
    """Shuffled, augmented, batched (float32 pixels 0..255, one-hot labels) batches for `fit`.

    Decoded uint8 images are cached in memory when `cache` (4× smaller than float32),
    so from the second epoch on only shuffling and augmentation remain.
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    ds = decoded_dataset(paths, size)
    if examples is not None:
        # Interleaved files have unknown length; telling tf.data lets Keras size each epoch.
        ds = ds.apply(tf.data.experimental.assert_cardinality(examples))
    if cache:
        ds = ds.cache()
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, num_parallel_calls=autotune, deterministic=True)
    active = augment is not None and augment.enabled
    # One stateless seed pair per batch, different every epoch but the same on every run.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))

    def to_model(batch: tuple[Any, Any], pair: Any) -> tuple[Any, Any]:
        images, labels = batch
        x = tf.cast(images, tf.float32)
        if active:
            assert augment is not None  # narrowing for mypy
            # Batched augmentation: one kernel launch per batch instead of per image.
            x = augment_batch(x, tf.cast(pair % (2**31 - 1), tf.int32), augment)
        return x, tf.one_hot(labels, n_classes)

    ds = ds.map(to_model, num_parallel_calls=autotune, deterministic=True)
    return ds.prefetch(autotune)
