"""`lenet`: the original project's from-scratch network, kept as the baseline."""

import keras

from models.layers import classifier, standardize
from models.registry import register_model


@register_model("lenet")
def build_lenet(input_shape, num_classes, filters=(16, 32, 64, 128, 256), dropout=0.25):
    """Five conv blocks (conv 3x3 + ReLU, BatchNorm, 2x2 max-pool, dropout), then dense 1000, 100.

    Args:
        filters: channels of the conv blocks; each block halves the image side.
        dropout: dropout rate after each block and dense layer.
    """
    inputs = keras.Input(shape=input_shape, name="images")
    x = standardize()(inputs)
    for index, width in enumerate(filters, start=1):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"block{index}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block{index}_bn")(x)
        x = keras.layers.MaxPooling2D(name=f"block{index}_pool")(x)
        x = keras.layers.Dropout(dropout, name=f"block{index}_dropout")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for units in (1000, 100):
        x = keras.layers.Dense(units, activation="relu", name=f"dense{units}")(x)
        x = keras.layers.Dropout(dropout, name=f"dense{units}_dropout")(x)
    return keras.Model(inputs, classifier(num_classes)(x), name="lenet")
