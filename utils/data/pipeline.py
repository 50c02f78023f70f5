"""tf.data input pipelines: one-hot labels and training-only augmentation."""

import keras
import numpy as np
import tensorflow as tf

from utils.data.cifar10 import NUM_CLASSES


def make_augmenter(augmentation, seed):
    """The augmentation its settings (the "augmentation" section) switch on, as one Keras layer;
    None when all are off.

    Runs on batches of float 0-255 images inside the training `tf.data` pipeline, so
    validation, test and prediction never see it.
    """
    layers = []
    if augmentation.augment_flip is True:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if augmentation.augment_translate:
        layers.append(RandomPixelShift(augmentation.augment_translate, seed=seed + 1))
    if augmentation.augment_randaugment:
        layers.append(keras.layers.RandAugment(value_range=(0, 255), seed=seed + 2))
    if augmentation.augment_erasing:
        layers.append(
            keras.layers.RandomErasing(
                factor=augmentation.augment_erasing, value_range=(0, 255), seed=seed + 3
            )
        )
    return keras.Sequential(layers, name="augmentation") if layers else None


@keras.saving.register_keras_serializable(package="cifar10")
class RandomPixelShift(keras.layers.Layer):
    """Shifts each image by whole pixels, up to `fraction` of its side each way (every shift
    equally likely), the border filled by mirroring: a random crop of the reflect-padded image, as
    airbench and the classic CIFAR recipes take. Identity at inference.

    Two gathers per batch, where Keras's RandomTranslation runs a projective transform (slower on
    CPU), and whose `nearest` rounding of a continuous shift makes the largest shifts half as likely.
    """

    def __init__(self, fraction, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.fraction = fraction
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        height, width = images.shape[1], images.shape[2]
        reach_rows, reach_cols = round(self.fraction * height), round(self.fraction * width)
        padding = [[0, 0], [reach_rows, reach_rows], [reach_cols, reach_cols], [0, 0]]
        padded = tf.pad(images, padding, "REFLECT")
        batch = (tf.shape(images)[0], 1)
        first_row = keras.random.randint(batch, 0, 2 * reach_rows + 1, seed=self.seed_generator)
        first_col = keras.random.randint(batch, 0, 2 * reach_cols + 1, seed=self.seed_generator)
        rows = tf.gather(padded, first_row + tf.range(height), batch_dims=1)
        return tf.gather(rows, first_col + tf.range(width), axis=2, batch_dims=1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "fraction": self.fraction, "seed": self.seed}


def make_mixers(augmentation, seed):
    """CutMix and MixUp, as the "augmentation" section switches them on: Keras layers that blend
    pairs of training images of a batch and their one-hot labels in proportion (empty when both are off)."""
    mixers = []
    if augmentation.augment_cutmix:
        mixers.append(keras.layers.CutMix(factor=augmentation.augment_cutmix, seed=seed + 4))
    if augmentation.augment_mixup:
        mixers.append(keras.layers.MixUp(alpha=augmentation.augment_mixup, seed=seed + 5))
    return tuple(mixers)


def _mixed(mixer, images, labels):
    blended = mixer({"images": images, "labels": labels}, training=True)
    return blended["images"], blended["labels"]


def make_dataset(
    split,
    batch_size,
    *,
    training,
    augmenter=None,
    mixers=(),
    seed=0,
    alternating_flip=False,
    whole_batches=False,
):
    """A batched, prefetched `tf.data.Dataset` of (float32 inputs, one-hot labels).

    Args:
        split: a `utils.data.cifar10.Split` of images (0-255), or of cached backbone features.
        training: an endless stream (give `fit` its `steps_per_epoch`) of passes over
            `split`, each shuffled anew, with `augmenter` applied;
            otherwise one pass in order.
        augmenter: layer from `make_augmenter`, or None.
        mixers: layers from `make_mixers`, applied after `augmenter` (labels become soft).
        alternating_flip: mirror a fixed random half of the images on even passes and
            the other half on odd passes.
        whole_batches: (not training) leave out a last, partial batch: Keras 3 fails to
            evaluate a batch that does not split evenly across distributed replicas.
    """
    if not training:
        examples = tf.data.Dataset.from_tensor_slices((split.images, split.labels)).cache()
        batches = examples.batch(batch_size, drop_remainder=whole_batches).map(
            _to_float_one_hot, num_parallel_calls=tf.data.AUTOTUNE
        )
        return batches.prefetch(tf.data.AUTOTUNE)
    batches = _training_batches(split, batch_size, seed, alternating_flip).map(
        _to_float_one_hot, num_parallel_calls=tf.data.AUTOTUNE
    )
    if augmenter is not None:
        # Sequential on purpose: the random layers advance a shared seed state, and
        # parallel calls would take its values in a racy order (runs not repeatable).
        batches = batches.map(lambda images, labels: (augmenter(images, training=True), labels))
    for mixer in mixers:  # sequential too, for the same reason
        batches = batches.map(lambda images, labels, mixer=mixer: _mixed(mixer, images, labels))
    return batches.prefetch(tf.data.AUTOTUNE)


def _training_batches(split, batch_size, seed, alternating_flip):
    """Batches of (image, label): pass after pass over `split`, each freshly shuffled.

    The alternating flip works on whole batches (one `where` each, not one per image).
    A run resumed from its epoch backup starts the stream again at its first pass.
    """
    count = len(split)
    mirrored_on_even_passes = np.random.default_rng(seed).random(count) < 0.5
    examples = tf.data.Dataset.from_tensor_slices((split.images, split.labels, mirrored_on_even_passes))
    stream = examples.shuffle(count, seed=seed, reshuffle_each_iteration=True).repeat().enumerate()

    def mirrored_alternately(positions, batch):
        images, labels, mirrored = batch
        odd_pass = tf.equal((positions // count) % 2, 1)
        flip = tf.reshape(mirrored != odd_pass, (-1, 1, 1, 1))
        return tf.where(flip, tf.reverse(images, axis=[2]), images), labels

    def unchanged(positions, batch):
        images, labels, _ = batch
        return images, labels

    choice = mirrored_alternately if alternating_flip else unchanged
    return stream.batch(batch_size).map(choice, num_parallel_calls=tf.data.AUTOTUNE)


def _to_float_one_hot(images, labels):
    return tf.cast(images, tf.float32), tf.one_hot(labels, NUM_CLASSES)
