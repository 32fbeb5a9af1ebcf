"""The fused augmentation warp: identity when off, exact flips, reproducible, in range."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.train.settings import AugmentSettings

pytestmark = pytest.mark.tf

OFF = AugmentSettings(flip="none", rotation=0.0, zoom=0.0, translation=0.0, brightness=0.0, contrast=0.0)


def batch(n: int = 16, size: int = 24) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, size, size, 3)).astype(np.float32)


def run(images: np.ndarray, settings: AugmentSettings, seed: tuple[int, int] = (1, 2)) -> np.ndarray:
    import tensorflow as tf

    from pipelines.train.data import augment_batch

    return np.asarray(augment_batch(tf.constant(images), tf.constant(seed, dtype=tf.int32), settings))


def test_zero_distortion_is_the_identity() -> None:
    images = batch()
    np.testing.assert_allclose(run(images, OFF), images, atol=1e-3)


def test_horizontal_flip_mirrors_whole_images_exactly() -> None:
    images = batch(n=32)
    out = run(images, OFF.model_copy(update={"flip": "horizontal"}))
    flipped = [bool(np.allclose(o, i[:, ::-1], atol=1e-3)) for o, i in zip(out, images, strict=True)]
    kept = [bool(np.allclose(o, i, atol=1e-3)) for o, i in zip(out, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 4 < sum(flipped) < 28  # about half, for 32 coin tosses


def test_same_seed_same_distortion_and_values_stay_pixels() -> None:
    images = batch()
    full = AugmentSettings(rotation=0.1, zoom=0.2, translation=0.2, brightness=0.3, contrast=0.3)
    a, b, c = run(images, full), run(images, full), run(images, full, seed=(3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.min() >= 0.0 and a.max() <= 255.0 and a.shape == images.shape


def test_brightness_and_contrast_are_one_affine_map_per_image_within_their_ranges() -> None:
    images = batch(n=8)
    settings = OFF.model_copy(update={"brightness": 0.2, "contrast": 0.3})
    out = run(images, settings)
    shifts, factors = [], []
    for x, y in zip(images, out, strict=True):
        fitted = []
        for ch in range(3):  # the contrast centre is each channel's mean
            xc, yc = x[..., ch], y[..., ch]
            inside = (yc > 0.5) & (yc < 254.5)  # clipped pixels carry no information about the map
            f, c = np.polyfit(xc[inside], yc[inside], 1)
            np.testing.assert_allclose(yc[inside], f * xc[inside] + c, atol=1e-2)
            # y = f x + m (1 - f) + b: contrast f about the brightened channel's mean, brightness b.
            fitted.append((f, c - xc.mean() * (1 - f)))
        (f, b), *rest = fitted
        assert all(abs(f2 - f) < 1e-4 and abs(b2 - b) < 1e-2 for f2, b2 in rest)  # one draw for the image
        shifts.append(b)
        factors.append(f)
    assert all(0.7 - 1e-4 <= f <= 1.3 + 1e-4 for f in factors)
    assert all(abs(b) <= 0.2 * 255 + 1e-2 for b in shifts)
    assert len({round(f, 3) for f in factors}) == len(factors)  # a draw per image
