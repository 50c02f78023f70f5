"""`fast_cnn`: a small VGG-like network with a frozen patch-whitening first layer.

The design follows the published airbench recipe (Jordan, arXiv 2404.00498) in our own
Keras code: a 2x2 convolution whose filters whiten the image patches of the training
set (fitted once, then frozen), three conv blocks with BatchNorm and GELU (convolutions
start as partial identities, BatchNorm shifts learn 64x faster), global max pooling and
a scaled linear classifier.
"""

import keras
import numpy as np
import tensorflow as tf

from models import parts
from models.registry import Evidence, Recipe, register_model
from utils.config.settings import PRESETS

WHITENING_LAYER = "whiten"


def extract_patches(images, size):
    """All `size` x `size` patches of `images` (N, H, W, C), flattened to rows."""
    images = np.asarray(images, dtype=np.float64)
    _, height, width, _ = images.shape
    rows, cols = height - size + 1, width - size + 1
    parts = [images[:, i : i + rows, j : j + cols, :] for i in range(size) for j in range(size)]
    # (N, rows, cols, size*size, C) in the kernel's (i, j, channel) order
    return np.stack(parts, axis=3).reshape(-1, size * size * images.shape[-1])


def whitening_filters(patches, epsilon):
    """Filters W and bias b such that (patch @ W + b) has identity covariance (for epsilon 0).

    Returns the eigenvector filters and their negatives, so a following ReLU or GELU
    keeps both signs of every whitened component.
    """
    mean = patches.mean(axis=0)
    covariance = np.cov(patches - mean, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    filters = eigenvectors / np.sqrt(np.maximum(eigenvalues, 0) + epsilon)
    filters = np.concatenate([filters, -filters], axis=1)
    return filters, -mean @ filters


def split_for_float16(weights):
    """(high, low): `weights` rounded to float16, and what that rounding left out, both in the
    weights' dtype; high + low == weights. A converter folds both into constants, and storing
    them in float16 keeps `weights` to about 2**-22 of their size where one rounding keeps 2**-11."""
    high = keras.ops.cast(keras.ops.cast(weights, "float16"), weights.dtype)
    return high, weights - high


@keras.saving.register_keras_serializable(package="cifar10")
class PatchWhitening(keras.layers.Layer):
    """A frozen `patch_size` convolution (valid padding) that whitens image patches.

    `adapt(images)` fits its filters on training images (raw 0-255 values); they stay
    frozen during training and are saved with the model.

    It computes in float32 under any precision policy: on raw pixels its output is a small
    difference of large terms, and in bfloat16 the rounded filters left errors of up to 8% of
    the output's spread in the faintest components. It needs no gradient, so float32 costs it one
    forward pass of a 2x2 convolution. For the same reason its kernel is applied as two: the part
    float16 holds exactly and the small rest (`split_for_float16`), so an export that stores every
    weight in float16 (TFLite float16) rounds only the rest; rounding the whole kernel changed 0.11%
    of a trained fast_cnn's test predictions.
    """

    def __init__(self, patch_size=2, epsilon=2.0, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})
        self.patch_size = patch_size
        self.epsilon = epsilon
        self.trainable = False

    def build(self, input_shape):
        depth = self.patch_size * self.patch_size * input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.patch_size, self.patch_size, input_shape[-1], 2 * depth),
            initializer="zeros",
            trainable=False,
        )
        self.bias = self.add_weight(name="bias", shape=(2 * depth,), initializer="zeros", trainable=False)

    def adapt(self, images, max_images=5000):
        """Fit the filters on the first `max_images` of `images` (N, H, W, C)."""
        patches = extract_patches(images[:max_images], self.patch_size)
        filters, bias = whitening_filters(patches, self.epsilon)
        self.kernel.assign(filters.reshape(self.kernel.shape).astype("float32"))
        self.bias.assign(bias.astype("float32"))

    def call(self, images):
        kernel = keras.ops.cast(self.kernel, images.dtype)
        whitened = sum(keras.ops.conv(images, part, padding="valid") for part in split_for_float16(kernel))
        return whitened + keras.ops.cast(self.bias, images.dtype)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "epsilon": self.epsilon}


SQRT_HALF = 0.7071067811865476


@keras.saving.register_keras_serializable(package="cifar10")
def gelu_via_erf(x):
    """The exact GELU, x * Phi(x), written with erf. Keras's "gelu" runs TensorFlow's, which uses
    erfc: in bfloat16 on CPU that took about twice as long, forward and backward, as this form
    (with `ShiftedBatchNorm`, the step's gain is `benchmarks/results/step_fast_cnn_fused_bn_*.json`)."""
    return 0.5 * x * (1.0 + keras.ops.erf(x * SQRT_HALF))


@keras.saving.register_keras_serializable(package="cifar10")
class ShiftedBatchNorm(keras.layers.Layer):
    """BatchNorm without a scale, plus a per-channel shift stored divided by `multiplier`, as one
    fused TensorFlow op (FusedBatchNormV3: one pass each way in bfloat16 with float32 statistics,
    where Keras's BatchNormalization casts to float32 and composes a dozen ops).

    Under SGD the stored shift learns `multiplier**2` times faster (airbench trains BatchNorm
    biases 64x faster than the weights); it is not excluded from weight decay, as in airbench.
    Moving statistics follow Keras's convention: moving = momentum * moving + (1 - momentum) * batch.
    """

    def __init__(self, momentum=0.6, epsilon=1e-5, multiplier=8.0, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.epsilon = epsilon
        self.multiplier = multiplier

    def build(self, input_shape):
        channels = (input_shape[-1],)
        self.shift = self.add_weight(name="shift", shape=channels, initializer="zeros", autocast=False)
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=channels, initializer="zeros", trainable=False, autocast=False
        )
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=channels, initializer="ones", trainable=False, autocast=False
        )

    def call(self, inputs, training=None):
        offset = self.multiplier * tf.convert_to_tensor(self.shift)
        scale = tf.ones_like(offset)
        if not training:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs,
                scale,
                offset,
                mean=tf.convert_to_tensor(self.moving_mean),
                variance=tf.convert_to_tensor(self.moving_variance),
                epsilon=self.epsilon,
                is_training=False,
            )
            return outputs
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, scale, offset, epsilon=self.epsilon, is_training=True
        )
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.assign(self.momentum * moving + (1.0 - self.momentum) * batch)
        return outputs

    def get_config(self):
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "multiplier": self.multiplier,
        }


@keras.saving.register_keras_serializable(package="cifar10")
class ScaledShift(keras.layers.Layer):
    """Adds a per-channel shift stored divided by `multiplier`: the layer after BatchNormalization
    in `fast_cnn` models saved before `ShiftedBatchNorm` joined the two; kept so that they load."""

    def __init__(self, multiplier=8.0, **kwargs):
        super().__init__(**kwargs)
        self.multiplier = multiplier

    def build(self, input_shape):
        self.shift = self.add_weight(name="shift", shape=(input_shape[-1],), initializer="zeros")

    def call(self, inputs):
        return inputs + keras.ops.cast(self.multiplier * self.shift, inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "multiplier": self.multiplier}


def _block(x, filters, name, batchnorm_momentum, shift_multiplier):
    """conv, 2x2 max-pool, BN + shift, GELU, conv, BN + shift, GELU (no BN scale, as in airbench)."""
    for index in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{index}")(x)
        if index == 1:
            x = keras.layers.MaxPooling2D(name=f"{name}_pool")(x)
        x = ShiftedBatchNorm(batchnorm_momentum, 1e-5, shift_multiplier, name=f"{name}_bn{index}")(x)
        x = keras.layers.Activation(gelu_via_erf, name=f"{name}_gelu{index}")(x)
    return x


def start_as_identity(conv):
    """Make a 3x3 convolution's first `in_channels` filters pass their input channel through.

    The remaining filters keep their random initialisation (PyTorch's partial `dirac_`,
    as in airbench), so every block starts close to an identity map.
    """
    kernel = np.array(conv.kernel)
    in_channels = kernel.shape[2]
    kernel[..., :in_channels] = 0.0
    center = kernel.shape[0] // 2
    for channel in range(min(in_channels, kernel.shape[3])):
        kernel[center, center, channel, channel] = 1.0
    conv.kernel.assign(kernel)


# Its recipe for either budget: the fast_muon preset (airbench94_muon's), 89.71% over 4 seeds in
# 8.7 minutes of training on the AVX512-BF16 EPYC, beside the PyTorch reference's 89.85% in 11.0.
_MUON_RECIPE = Recipe(
    args={key: value for key, value in PRESETS["fast_muon"].items() if key != "models"},
    evidence=Evidence(
        accuracy=89.71,
        minutes=8.7,
        machine="2-core AMD EPYC (AVX512-BF16), mixed_bfloat16",
        record="benchmarks/results/versus_reference/versus_reference_muon_whiten32_4seeds.json",
    ),
)


@register_model("fast_cnn", recipes={"short": _MUON_RECIPE, "long": _MUON_RECIPE})
def build_fast_cnn(
    input_shape,
    num_classes,
    widths=(64, 256, 256),
    logit_scale=1 / 9,
    batchnorm_momentum=0.6,
    shift_multiplier=8.0,
    identity_init=True,
):
    """Whitening layer, GELU, three conv blocks, global max-pool, scaled linear classifier.

    Call `adapt_to_images(model, train_images)` before training to fit the whitening.

    Args:
        widths: channels of the three blocks.
        logit_scale: multiplies the logits; small values keep early training stable.
        batchnorm_momentum: Keras momentum of the moving statistics (airbench passes
            1 - 0.6 to PyTorch, which weighs the new batch by its momentum).
        shift_multiplier: BatchNorm shifts learn `shift_multiplier**2` times faster.
        identity_init: start every block convolution as a partial identity.
    """
    inputs = keras.Input(shape=input_shape, name="images")
    x = PatchWhitening(name=WHITENING_LAYER)(inputs)
    x = keras.layers.Activation(gelu_via_erf, name="whiten_gelu")(x)
    for index, width in enumerate(widths, start=1):
        x = _block(x, width, f"block{index}", batchnorm_momentum, shift_multiplier)
    x = keras.layers.GlobalMaxPooling2D(name=parts.FEATURES)(x)
    x = keras.layers.Dense(num_classes, use_bias=False, name="logits")(x)
    x = keras.layers.Rescaling(logit_scale, name="logit_scale")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name=parts.CLASSIFIER)(x)
    model = keras.Model(inputs, outputs, name="fast_cnn")
    if identity_init:
        for layer in model.layers:
            if isinstance(layer, keras.layers.Conv2D):
                start_as_identity(layer)
    return model


def adapt_to_images(model, images):
    """Fit every data-dependent layer of `model` (the patch whitening) on training images."""
    for layer in model.layers:
        if isinstance(layer, PatchWhitening):
            layer.adapt(images)
