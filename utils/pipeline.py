"""tf.data input pipelines: one-hot labels and training-only augmentation."""

import keras
import tensorflow as tf

from utils.data import NUM_CLASSES


def make_augmenter(args, seed):
    """The augmentation `args` switch on, as one Keras layer; None when all are off.

    Runs on batches of float 0-255 images inside the training `tf.data` pipeline, so
    validation, test and prediction never see it.
    """
    layers = []
    if args["augment_flip"]:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if args["augment_translate"]:
        shift = args["augment_translate"]
        layers.append(keras.layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed + 1))
    if args["augment_randaugment"]:
        layers.append(keras.layers.RandAugment(value_range=(0, 255), seed=seed + 2))
    if args["augment_erasing"]:
        layers.append(
            keras.layers.RandomErasing(factor=args["augment_erasing"], value_range=(0, 255), seed=seed + 3)
        )
    return keras.Sequential(layers, name="augmentation") if layers else None


def make_dataset(split, batch_size, *, training, augmenter=None, seed=0):
    """A batched, prefetched `tf.data.Dataset` of (float32 inputs, one-hot labels).

    Args:
        split: a `utils.data.Split` of images (0-255), or of cached backbone features.
        training: shuffle every epoch and apply `augmenter`; otherwise keep order.
        augmenter: layer from `make_augmenter`, or None.
    """
    dataset = tf.data.Dataset.from_tensor_slices((split.images, split.labels)).cache()
    if training:
        dataset = dataset.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(_to_float_one_hot, num_parallel_calls=tf.data.AUTOTUNE)
    if training and augmenter is not None:
        # Sequential on purpose: the random layers advance a shared seed state, and
        # parallel calls would take its values in a racy order (runs not repeatable).
        dataset = dataset.map(lambda images, labels: (augmenter(images, training=True), labels))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _to_float_one_hot(images, labels):
    return tf.cast(images, tf.float32), tf.one_hot(labels, NUM_CLASSES)
