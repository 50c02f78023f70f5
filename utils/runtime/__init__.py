"""The session a run starts in: versions, Colab and Drive, precision and XLA choice, tf.distribute."""
