"""CIFAR-10: safe loading, augmentation, tf.data pipelines and the feature cache."""
