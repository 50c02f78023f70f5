"""tf.data input pipelines: one-hot labels and training-only augmentation."""

import keras
import numpy as np
import tensorflow as tf

from utils.data import NUM_CLASSES


def make_augmenter(args, seed):
    """The augmentation `args` switch on, as one Keras layer; None when all are off.

    Runs on batches of float 0-255 images inside the training `tf.data` pipeline, so
    validation, test and prediction never see it.
    """
    layers = []
    if args["augment_flip"] is True:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if args["augment_translate"]:
        shift = args["augment_translate"]
        # Nearest sampling shifts by whole pixels, as a reflect-padded random crop does (bilinear
        # sub-pixel shifts would blur every training image).
        layers.append(
            keras.layers.RandomTranslation(
                shift, shift, fill_mode="reflect", interpolation="nearest", seed=seed + 1
            )
        )
    if args["augment_randaugment"]:
        layers.append(keras.layers.RandAugment(value_range=(0, 255), seed=seed + 2))
    if args["augment_erasing"]:
        layers.append(
            keras.layers.RandomErasing(factor=args["augment_erasing"], value_range=(0, 255), seed=seed + 3)
        )
    return keras.Sequential(layers, name="augmentation") if layers else None


def make_mixers(args, seed):
    """CutMix and MixUp, as args switch them on: Keras layers that blend pairs of training
    images of a batch and their one-hot labels in proportion (empty when both are off)."""
    mixers = []
    if args["augment_cutmix"]:
        mixers.append(keras.layers.CutMix(factor=args["augment_cutmix"], seed=seed + 4))
    if args["augment_mixup"]:
        mixers.append(keras.layers.MixUp(alpha=args["augment_mixup"], seed=seed + 5))
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
        split: a `utils.data.Split` of images (0-255), or of cached backbone features.
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
    passes = _training_passes(split, seed, alternating_flip)
    batches = passes.batch(batch_size).map(_to_float_one_hot, num_parallel_calls=tf.data.AUTOTUNE)
    if augmenter is not None:
        # Sequential on purpose: the random layers advance a shared seed state, and
        # parallel calls would take its values in a racy order (runs not repeatable).
        batches = batches.map(lambda images, labels: (augmenter(images, training=True), labels))
    for mixer in mixers:  # sequential too, for the same reason
        batches = batches.map(lambda images, labels, mixer=mixer: _mixed(mixer, images, labels))
    return batches.prefetch(tf.data.AUTOTUNE)


def _training_passes(split, seed, alternating_flip):
    """Unbatched (image, label) examples: pass after pass over `split`, each freshly shuffled.

    A run resumed from its epoch backup starts the stream again at its first pass.
    """
    count = len(split)
    mirrored_on_even_passes = np.random.default_rng(seed).random(count) < 0.5
    examples = tf.data.Dataset.from_tensor_slices((split.images, split.labels, mirrored_on_even_passes))
    stream = examples.shuffle(count, seed=seed, reshuffle_each_iteration=True).repeat().enumerate()

    def example(position, item):
        image, label, mirrored = item
        if alternating_flip:
            odd_pass = tf.equal((position // count) % 2, 1)
            image = tf.where(mirrored != odd_pass, tf.reverse(image, axis=[1]), image)
        return image, label

    return stream.map(example)


def _to_float_one_hot(images, labels):
    return tf.cast(images, tf.float32), tf.one_hot(labels, NUM_CLASSES)
