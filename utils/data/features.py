"""Frozen-backbone features, computed once per dataset and cached on disk.

While a pretrained backbone is frozen (and no augmentation alters the images) its output
for an image never changes, so the head can be trained on stored features in seconds
instead of running the backbone every epoch. A cache file is keyed by a hash of the
backbone's weights, its input size and the images themselves: any change of backbone,
weights file, image size or data gives a new key, so a stale file is never read.
"""

import hashlib
import os

import keras
import numpy as np

from models import parts
from models.pretrained.backbones import resizable_side
from utils.data.cifar10 import Split
from utils.progress import timed_step


def cache_key(model, images):
    """A hex digest of everything the features depend on: weights, input size (and the side of a
    resizable model), which maps are pooled, precision, images."""
    digest = hashlib.sha256()
    backbone = parts.backbone(model)  # the only weights before the pooled features
    pooled = parts.features_shape(model)
    resize = resizable_side(model)
    side = "" if resize is None else int(keras.ops.convert_to_numpy(resize.side))
    digest.update(f"{model.name} {backbone.input_shape} {side} {pooled} {model.dtype_policy.name}".encode())
    for weight in backbone.weights:
        digest.update(weight.path.encode())
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    digest.update(np.ascontiguousarray(images).tobytes())
    return digest.hexdigest()


def cached_features(model, images, cache_dir, batch_size, verbose=0):
    """Pooled backbone features of `images`, read from `cache_dir` or computed and stored (saying
    so, with Keras's progress bar at `verbose` 1).

    Returns:
        (features array, whether it came from the cache).
    """
    path = os.path.join(cache_dir, f"{model.name}-{cache_key(model, images)[:24]}.npy")
    if os.path.isfile(path):
        return np.load(path), True
    with timed_step(f"{model.name}: backbone features of {len(images):,} images at {_side(model)} px"):
        features = parts.features_model(model).predict(
            images.astype(np.float32), batch_size=batch_size, verbose=verbose
        )
    features = features.astype(np.float32)
    os.makedirs(cache_dir, exist_ok=True)
    temporary = f"{path}.tmp.npy"
    np.save(temporary, features)
    os.replace(temporary, path)
    return features, False


def _side(model):
    """The side the backbone sees: its resize layer's current side, else its input's."""
    resize = resizable_side(model)
    if resize is None:
        return parts.backbone(model).input_shape[1]
    return int(keras.ops.convert_to_numpy(resize.side))


def feature_split(model, split, cache_dir, batch_size, verbose=0):
    """`split` with its images replaced by their cached pooled backbone features."""
    return Split(cached_features(model, split.images, cache_dir, batch_size, verbose)[0], split.labels)
