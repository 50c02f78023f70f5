"""`custom_cnn`: our from-scratch residual CNN, sized for CPU training."""

import keras

from models import parts
from models.layers import classifier, conv_bn_act, standardize
from models.registry import register_model


def _residual(x, filters, name):
    shortcut = x
    x = conv_bn_act(x, filters, f"{name}_a")
    x = conv_bn_act(x, filters, f"{name}_b")
    return keras.layers.Add(name=f"{name}_add")([shortcut, x])


def _stage(x, filters, name, residual):
    """Conv to widen, 2x2 max-pool, and optionally a two-conv residual block."""
    x = conv_bn_act(x, filters, f"{name}_widen")
    x = keras.layers.MaxPooling2D(name=f"{name}_pool")(x)
    return _residual(x, filters, f"{name}_res") if residual else x


@register_model("custom_cnn")
def build_custom_cnn(input_shape, num_classes, width=32, dropout=0.2):
    """A ResNet-9-like network: stem, three down-sampling stages, global pooling.

    Widths are width, 2w, 4w, 8w; stages 1 and 3 carry a residual block. Every conv is
    followed by BatchNorm and ReLU; dropout before the classifier regularizes.

    Args:
        width: channels of the stem (the default 32 keeps an epoch to a few CPU minutes).
        dropout: dropout rate before the classifier.
    """
    inputs = keras.Input(shape=input_shape, name="images")
    x = standardize()(inputs)
    x = conv_bn_act(x, width, "stem")
    x = _stage(x, 2 * width, "stage1", residual=True)
    x = _stage(x, 4 * width, "stage2", residual=False)
    x = _stage(x, 8 * width, "stage3", residual=True)
    x = keras.layers.GlobalMaxPooling2D(name=parts.FEATURES)(x)
    x = keras.layers.Dropout(dropout, name=parts.DROPOUT)(x)
    return keras.Model(inputs, classifier(num_classes)(x), name="custom_cnn")
