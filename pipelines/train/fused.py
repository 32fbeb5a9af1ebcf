"""BatchNormalization that runs TensorFlow's fused kernel, for training only.

Keras 3 computes BatchNorm as separate moments, normalisation and moving-average ops
(and as many gradient ops): on a 2-core CPU that was about half of MobileNetV2's train
step. `FusedBatchNormV3` does the forward pass in one kernel and its registered gradient
in one more. The layer has the stock layer's variables in the stock order, so a trained
model's weights go into a stock-built model unchanged (`pipelines.train.core` does that
before saving): saved and exported models hold only stock Keras layers.

Imports Keras and TensorFlow at module level: `pipelines.train.model` imports it lazily.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


class FusedBatchNormalization(keras.layers.BatchNormalization):  # type: ignore[misc]
    """`keras.layers.BatchNormalization` on NHWC images through `tf.raw_ops.FusedBatchNormV3`."""

    def _fusable(self, inputs: Any, mask: Any) -> bool:
        # The fused kernel covers the plain case MobileNetV2 uses; anything else is the stock path.
        return (
            mask is None
            and not self.renorm
            and self.center
            and self.scale
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
        )

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        learning = bool(training) and self.trainable
        # Statistics in float32 whatever the compute dtype, as the stock layer does.
        y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=tf.cast(inputs, tf.float32),
            scale=self.gamma,
            offset=self.beta,
            mean=self.moving_mean,
            variance=self.moving_variance,
            epsilon=self.epsilon,
            # With a factor below 1 the kernel returns the updated moving averages themselves.
            exponential_avg_factor=1.0 - self.momentum if learning else 1.0,
            data_format="NHWC",
            is_training=learning,
        )
        if learning:
            self.moving_mean.assign(mean)
            self.moving_variance.assign(variance)
        return tf.cast(y, self.compute_dtype)


def fuse(backbone: Any) -> Any:
    """A copy of a functional `backbone` whose BatchNormalization layers are fused (same names and weights)."""

    def clone(layer: Any) -> Any:
        if type(layer) is keras.layers.BatchNormalization:
            return FusedBatchNormalization.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    fused = keras.models.clone_model(backbone, clone_function=clone)
    fused.set_weights(backbone.get_weights())
    return fused
