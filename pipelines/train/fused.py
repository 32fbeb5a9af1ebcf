"""BatchNormalization and Adam on TensorFlow's fused kernels, for training only.

Keras 3 computes BatchNorm as separate moments, normalisation and moving-average ops
(and as many gradient ops): on a 2-core CPU that was about half of MobileNetV2's train
step. `FusedBatchNormV3` does the forward pass in one kernel and its registered gradient
in one more. The layer has the stock layer's variables in the stock order, so a trained
model's weights go into a stock-built model unchanged (`pipelines.train.core` does that
before saving): saved and exported models hold only stock Keras layers.

Keras 3's Adam updates each variable with about ten ops, traced in Python: 2.5 s of the
first step of every phase for MobileNetV2's 260 variables. `ResourceApplyAdam` is the
same update (Kingma and Ba with Keras' bias correction folded into the step) in one op.

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


class Adam(keras.optimizers.Adam):  # type: ignore[misc]
    """`keras.optimizers.Adam` whose per-variable update is TensorFlow's one fused op (dense gradients, no AMSGrad)."""

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            super().update_step(gradient, variable, learning_rate)
            return
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=gradient,
            use_locking=False,
        )
