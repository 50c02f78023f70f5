"""Layers shared by the model families: input standardization and the classifier head."""

import keras
import numpy as np

from models import parts

# Per-channel mean and standard deviation of the CIFAR-10 training images (0-255 scale).
CIFAR10_MEAN = np.array([125.3, 123.0, 113.9])
CIFAR10_STD = np.array([63.0, 62.1, 66.7])


def standardize(name="standardize"):
    """Map raw 0-255 pixels to zero mean, unit variance per channel."""
    return keras.layers.Normalization(mean=CIFAR10_MEAN, variance=CIFAR10_STD**2, name=name)


def classifier(num_classes, name=parts.CLASSIFIER):
    """The softmax output, kept in float32 under mixed precision for a stable loss."""
    return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=name)


def conv_bn_act(x, filters, name, activation="relu"):
    """3x3 convolution (no bias), BatchNorm, activation."""
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
