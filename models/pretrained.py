"""ImageNet backbones from `keras.applications` with a new classification head.

Each model takes raw 0-255 images: it resizes them to `image_size` and applies the
backbone's own `preprocess_input` inside the graph, then runs the backbone in
inference mode and a new head (global pooling, dropout, softmax).
"""

import dataclasses
import os

import keras

from models.layers import classifier
from models.registry import register_model
from utils.errors import ConfigError, WeightsError

BACKBONE_LAYER = "backbone"


@dataclasses.dataclass(frozen=True)
class Backbone:
    """A `keras.applications` constructor and the module holding its preprocess_input."""

    constructor: str
    module: str

    def preprocess(self, images):
        return getattr(keras.applications, self.module).preprocess_input(images)

    def build(self, input_shape, weights):
        constructor = getattr(keras.applications, self.constructor)
        return constructor(include_top=False, weights=weights, input_shape=input_shape, name=BACKBONE_LAYER)


BACKBONES = {
    "vgg16": Backbone("VGG16", "vgg16"),
    "vgg19": Backbone("VGG19", "vgg19"),
    "resnet50": Backbone("ResNet50", "resnet50"),
    "mobilenetv2": Backbone("MobileNetV2", "mobilenet_v2"),
    "efficientnetb0": Backbone("EfficientNetB0", "efficientnet"),
    "convnext_tiny": Backbone("ConvNeXtTiny", "convnext"),
}


@keras.saving.register_keras_serializable(package="cifar10")
class BackbonePreprocess(keras.layers.Layer):
    """The named backbone's `preprocess_input`, as a layer so saved models keep it."""

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        if backbone not in BACKBONES:
            raise ConfigError(f"Unknown backbone {backbone!r}; known: {sorted(BACKBONES)}.")
        self.backbone = backbone

    def call(self, images):
        return BACKBONES[self.backbone].preprocess(images)

    def get_config(self):
        return {**super().get_config(), "backbone": self.backbone}


def load_backbone(name, input_shape, weights):
    """Build backbone `name` without its top, with weights "imagenet", a file, or None."""
    backbone = BACKBONES[name]
    if weights is None:
        return backbone.build(input_shape, None)
    if weights == "imagenet":
        try:
            return backbone.build(input_shape, "imagenet")
        except Exception as error:  # the download raises many kinds of network errors
            raise WeightsError(
                f"Could not download ImageNet weights for {name} ({error}). Without internet, "
                "download the no-top weights file elsewhere and set args['weights'] to its "
                "path, or set args['weights'] = None to train from random initialisation."
            ) from error
    if not os.path.isfile(weights):
        raise WeightsError(
            f"Weights file {weights!r} does not exist. args['weights'] accepts 'imagenet', "
            "a path to a no-top weights file (.h5 / .weights.h5) or None."
        )
    model = backbone.build(input_shape, None)
    try:
        model.load_weights(weights)
    except Exception as error:  # h5py and Keras raise various errors on a mismatch
        raise WeightsError(f"Weights file {weights!r} does not fit {name} without top: {error}") from error
    return model


def build_pretrained(name, input_shape, num_classes, weights, image_size, dropout):
    """A frozen backbone in inference mode plus a new trainable head."""
    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    if image_size != input_shape[0]:
        x = keras.layers.Resizing(image_size, image_size, name="resize")(x)
    x = BackbonePreprocess(name, name="preprocess")(x)
    base = load_backbone(name, (image_size, image_size, input_shape[2]), weights)
    base.trainable = False
    # training=False keeps BatchNorm in inference mode during fine-tuning, too.
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, classifier(num_classes)(x), name=name)


def _register(name):
    @register_model(name)
    def builder(input_shape, num_classes, weights="imagenet", image_size=32, dropout=0.3):
        return build_pretrained(name, input_shape, num_classes, weights, image_size, dropout)

    builder.__doc__ = f"{BACKBONES[name].constructor} (ImageNet) with a new head; see build_pretrained."
    return builder


for _name in BACKBONES:
    _register(_name)


def is_pretrained(model):
    """Whether `model` holds a backbone that fine-tuning can unfreeze."""
    return any(layer.name == BACKBONE_LAYER for layer in model.layers)


def get_backbone(model):
    return model.get_layer(BACKBONE_LAYER)
