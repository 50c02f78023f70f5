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


def cached_features(model, images, cache_dir, batch_size):
    """Pooled backbone features of `images`, read from `cache_dir` or computed and stored.

    Returns:
        (features array, whether it came from the cache).
    """
    path = os.path.join(cache_dir, f"{model.name}-{cache_key(model, images)[:24]}.npy")
    if os.path.isfile(path):
        return np.load(path), True
    features = parts.features_model(model).predict(
        images.astype(np.float32), batch_size=batch_size, verbose=0
    )
    features = features.astype(np.float32)
    os.makedirs(cache_dir, exist_ok=True)
    temporary = f"{path}.tmp.npy"
    np.save(temporary, features)
    os.replace(temporary, path)
    return features, False


def feature_split(model, split, cache_dir, batch_size):
    """`split` with its images replaced by their cached pooled backbone features."""
    return Split(cached_features(model, split.images, cache_dir, batch_size)[0], split.labels)
