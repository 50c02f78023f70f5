"""Why a model decides: Grad-CAM heat maps (Selvaraju et al., ICCV 2017) over input images."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf


def _node(layer):
    """The node of `layer`'s (single) call in the model that holds it. For a nested model (a
    pretrained backbone) `layer.output` is the tensor of its own inner graph, which the outer
    model's inputs do not reach; the node holds the outer tensors."""
    return layer._inbound_nodes[0]


def _map_shape(layer):
    """(height, width) of a layer's output, or None when it is not a 4-D feature map."""
    shape = _node(layer).output_tensors[0].shape
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


def find_feature_map(model):
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


def _explainer(model, feature_map):
    """A function of images -> (feature map, class probabilities)."""
    if feature_map.inside is None:
        return keras.Model(model.inputs, [_node(feature_map.layer).output_tensors[0], model.output])
    nested = _node(feature_map.inside)
    before = keras.Model(model.inputs, nested.input_tensors[0])
    # A backbone may have several outputs (feature_depths > 1): all of them lead to the head.
    inside = keras.Model(feature_map.inside.inputs, [feature_map.layer.output, *feature_map.inside.outputs])
    after = keras.Model(nested.output_tensors, model.output)

    def explain(images, training=False):
        features, *nested_outputs = inside(before(images, training=training), training=training)
        return features, after(nested_outputs, training=training)

    return explain


def gradcam(model, images, classes=None, feature_map=None):
    """Grad-CAM heat maps of `images` (raw 0-255, N x H x W x 3), in [0, 1], of shape (N, H, W).

    Each feature channel is weighted by the mean gradient of the class's log-probability
    (defined for any model ending in a softmax), the weighted sum goes through a ReLU, is
    scaled to a maximum of 1 and resized to the image.

    Args:
        classes: the class explained for each image; None: the predicted class.
        feature_map: a `FeatureMap`; None: `find_feature_map(model)`.
    """
    explain = _explainer(model, feature_map or find_feature_map(model))
    images = tf.convert_to_tensor(np.asarray(images, np.float32))

    # Traced, not eager: a model that resizes inside (progressive resizing) may feed its backbone
    # another side than the one it was built for, which only a graph's unknown sides accept.
    @tf.function
    def features_and_gradients(images):
        with tf.GradientTape() as tape:
            # Watching the input records every operation after it, also in a frozen backbone,
            # whose non-trainable weights the tape would not watch.
            tape.watch(images)
            features, probabilities = explain(images, training=False)
            probabilities = tf.cast(probabilities, tf.float32)
            chosen_classes = tf.argmax(probabilities, axis=1) if classes is None else classes
            chosen = tf.gather(probabilities, tf.cast(chosen_classes, tf.int32), axis=1, batch_dims=1)
            score = tf.math.log(tf.maximum(chosen, 1e-12))
        return features, tape.gradient(score, features)

    features, gradients = features_and_gradients(images)
    gradients = tf.cast(gradients, tf.float32)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(weights * tf.cast(features, tf.float32), axis=-1))
    cams = cams / tf.maximum(tf.reduce_max(cams, axis=(1, 2), keepdims=True), 1e-12)
    resized = tf.image.resize(cams[..., None], images.shape[1:3], method="bilinear")[..., 0]
    return np.clip(resized.numpy(), 0.0, 1.0)
