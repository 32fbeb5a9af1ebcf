"""The classifier: raw RGB pixels in, class probabilities out, MobileNetV2 in between.

    pixels (float32, 0..255, H×W×3) -> Rescaling to [-1, 1] -> MobileNetV2 backbone
        -> global average pool -> dropout -> Dense softmax (float32) "probabilities"

Preprocessing lives inside the model so TFLite, ONNX and the edge runtime all feed the
same raw pixels. A foreign pretrained backbone (imagenet, a weights file) keeps its
BatchNorm statistics fixed while the head trains and the top layers fine-tune; a random
or warm-started one trains whole with live statistics. Keras 3 lets the outer call's
`training` flag override a `training=False` given when the graph was built, so what
freezes a BatchNorm layer is `trainable = False`, which also runs it in inference mode.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pipelines.train.errors import InvalidInput

BACKBONE = "backbone"
HEAD = "probabilities"
INPUT = "pixels"


def build_model(
    n_classes: int,
    *,
    alpha: float,
    size: int,
    dropout: float,
    weights: str | None,
    pretrained: bool,
    fused_batchnorm: bool = False,
) -> Any:
    """A fresh classifier; `weights` is None, "imagenet" or a local weights file for the backbone.

    `fused_batchnorm` builds the training twin (`pipelines.train.fused`): same weights, faster
    BatchNorm, not for saving.
    """
    import keras

    try:
        backbone = keras.applications.MobileNetV2(
            input_shape=(size, size, 3),
            alpha=alpha,
            include_top=False,
            weights=weights,
            pooling=None,
            name=BACKBONE,
        )
    except ValueError as exc:
        raise InvalidInput(f"cannot build MobileNetV2 alpha={alpha} size={size} weights={weights!r}: {exc}") from None
    except OSError as exc:
        raise InvalidInput(
            f"cannot load backbone weights {weights!r}: {exc}; imagenet weights need network access, "
            "use --weights none or --warm-start runs/<id> offline"
        ) from None
    if fused_batchnorm:
        from pipelines.train.fused import fuse

        backbone = fuse(backbone)
    inputs = keras.Input(shape=(size, size, 3), dtype="float32", name=INPUT)
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit_range")(inputs)
    x = backbone(x, training=False) if pretrained else backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name=HEAD)(x)
    return keras.Model(inputs, outputs, name="edgeloop_classifier")


@contextlib.contextmanager
def precision(policy: str) -> Iterator[None]:
    """Keras' global dtype policy set to `policy` inside the block, restored after it."""
    import keras

    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def set_trainable(model: Any, *, backbone_layers: int | None, freeze_batchnorm: bool = True) -> None:
    """Freeze the backbone (None), or unfreeze its top `backbone_layers` (0 = all of it).

    With `freeze_batchnorm` (a foreign pretrained backbone) BatchNorm layers stay frozen:
    their moving statistics must not drift on a small dataset.
    """
    import keras

    backbone = model.get_layer(BACKBONE)
    if backbone_layers is None:
        backbone.trainable = False
        return
    backbone.trainable = True
    cut = 0 if backbone_layers == 0 else max(0, len(backbone.layers) - backbone_layers)
    for i, layer in enumerate(backbone.layers):
        frozen_bn = freeze_batchnorm and isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = i >= cut and not frozen_bn


def fast_batchnorm(model: Any, momentum: float = 0.9) -> None:
    """Make BatchNorm statistics follow training quickly when the backbone starts from random.

    MobileNetV2's momentum of 0.999 needs thousands of steps before the moving statistics
    used at inference match the learned weights; a small catalogue trains for a few hundred.
    """
    import keras

    for layer in model.get_layer(BACKBONE).layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def head_weights(model: Any) -> tuple[Any, Any]:
    kernel, bias = model.get_layer(HEAD).get_weights()
    return kernel, bias


def warm_start(model: Any, parent: Any, carried: dict[int, int]) -> None:
    """Copy the parent's backbone into `model` and carry its head columns over by class index."""
    from pipelines.train.labels import carry_over_head

    try:
        src = parent.get_layer(BACKBONE)
    except ValueError:
        raise InvalidInput("the warm-start model has no 'backbone' layer; it was not trained by edgeloop") from None
    dst = model.get_layer(BACKBONE)
    src_weights = src.get_weights()
    dst_shapes = [w.shape for w in dst.get_weights()]
    if [w.shape for w in src_weights] != dst_shapes:
        raise InvalidInput(
            "the warm-start model's backbone has a different shape (alpha) than this run's; "
            "set --alpha to the parent's value"
        )
    dst.set_weights(src_weights)
    old_kernel, old_bias = head_weights(parent)
    new_kernel, new_bias = head_weights(model)
    kernel, bias = carry_over_head(old_kernel, old_bias, new_kernel, new_bias, carried)
    model.get_layer(HEAD).set_weights([kernel, bias])
