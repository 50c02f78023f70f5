"""The named parts every model exposes, and the one place that knows the layer names behind them.

A builder names its layers with these constants; code outside models/ reaches a part through the
functions below, never by a layer name:
- features: the pooled features the head reads (`features_model`);
- head: dropout and classifier on those features (`head_model`);
- classifier: the output layer, whose kernel some optimizers treat apart (`classifier_kernel`);
- backbone: a pretrained model's ImageNet network (`backbone`, `has_backbone`);
- last feature map: the last map larger than 1x1, which Grad-CAM explains (`last_feature_map`).
"""

import dataclasses

import keras

FEATURES = "pool"
DROPOUT = "dropout"
CLASSIFIER = "predictions"
BACKBONE = "backbone"


def features_model(model):
    """The part of `model` up to its pooled features."""
    return keras.Model(model.inputs, model.get_layer(FEATURES).output, name=f"{model.name}_features")


def features_shape(model):
    """Shape of the pooled features (batch dimension first)."""
    return model.get_layer(FEATURES).output.shape


def head_model(model):
    """The layers after the pooled features (dropout, any hidden layer, classifier), in order,
    sharing their weights with `model`."""
    features = keras.Input(shape=features_shape(model)[1:], name="features")
    names = [layer.name for layer in model.layers]
    x = features
    for layer in model.layers[names.index(FEATURES) + 1 :]:
        x = layer(x)
    return keras.Model(features, x, name=f"{model.name}_head")


def classifier_kernel(model):
    """Path of the model's last trainable weight matrix: its classifier's kernel (None: none)."""
    matrices = [weight.path for weight in model.trainable_weights if len(weight.shape) == 2]
    return matrices[-1] if matrices else None


def has_backbone(model):
    """Whether `model` holds a backbone that fine-tuning can unfreeze."""
    return any(layer.name == BACKBONE for layer in model.layers)


def backbone(model):
    """The pretrained network inside `model`."""
    return model.get_layer(BACKBONE)


def call_node(layer):
    """The node of `layer`'s (single) call in the model that holds it. For a nested model (a
    pretrained backbone) `layer.output` is the tensor of its own inner graph, which the outer
    model's inputs do not reach; the node holds the outer tensors."""
    return layer._inbound_nodes[0]


def _map_shape(layer):
    """(height, width) of a layer's output, or None when it is not a 4-D feature map."""
    shape = call_node(layer).output_tensors[0].shape
    return tuple(shape[1:3]) if len(shape) == 4 else None


def _last_map(layers):
    """The last of `layers` whose output is a feature map larger than 1x1, or None."""
    maps = [layer for layer in layers if _map_shape(layer) not in (None, (1, 1))]
    return maps[-1] if maps else None


@dataclasses.dataclass(frozen=True)
class FeatureMap:
    """The feature map Grad-CAM reads: a layer of the model, or of a nested model in it."""

    layer: keras.Layer
    inside: keras.Model | None = None

    @property
    def name(self):
        return self.layer.name if self.inside is None else f"{self.inside.name}/{self.layer.name}"

    @property
    def shape(self):
        return _map_shape(self.layer)


def last_feature_map(model):
    """The last feature map of `model` larger than 1x1, searched from the output backwards.

    A nested model (a pretrained backbone) whose output is larger than 1x1 is taken whole, its
    output being its last convolutional map; at small image sizes, where that output is 1x1,
    the search continues inside it. A backbone with several outputs (pooled maps of several
    stages, deepest first) is judged by its deepest map. Works on a model reloaded from a file.

    Raises:
        ValueError: when no layer outputs a feature map larger than 1x1.
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    for layer in reversed(layers):
        shape = _map_shape(layer)
        if shape is not None and shape != (1, 1):
            return FeatureMap(layer)
        if shape == (1, 1) and isinstance(layer, keras.Model):
            inner = _last_map(layer.layers)
            if inner is not None:
                return FeatureMap(inner, inside=layer)
    raise ValueError(f"{model.name} has no layer with a feature map larger than 1x1 to explain.")
