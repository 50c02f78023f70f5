"""Callbacks the training tests share."""

import keras


class Interrupt(keras.callbacks.Callback):
    """Simulates Ctrl-C once `after_epochs` epochs have ended, as the next begins (after their
    backup); counts the epochs run."""

    def __init__(self, after_epochs):
        super().__init__()
        self.after_epochs = after_epochs
        self.epochs_run = 0

    def on_epoch_begin(self, epoch, logs=None):
        if self.epochs_run == self.after_epochs:
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_run += 1
