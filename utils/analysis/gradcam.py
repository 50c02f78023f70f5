"""Why a model decides: Grad-CAM heat maps (Selvaraju et al., ICCV 2017) over input images."""

import keras
import numpy as np
import tensorflow as tf

from models.parts import call_node, last_feature_map


def _explainer(model, feature_map):
    """A function of images -> (feature map, class probabilities)."""
    if feature_map.inside is None:
        return keras.Model(model.inputs, [call_node(feature_map.layer).output_tensors[0], model.output])
    nested = call_node(feature_map.inside)
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
        feature_map: a `FeatureMap`; None: `last_feature_map(model)`.
    """
    explain = _explainer(model, feature_map or last_feature_map(model))
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
