"""Callbacks of a training phase: epoch timing, Lookahead weight averaging, and the ones `args`
switch on (backup, NaN stop, best checkpoint, early stopping, plateau, TensorBoard), and the history
written epoch by epoch."""

import contextlib
import os
import re
import shutil
import time
import warnings

import keras
import numpy as np

from utils.progress import clock_time, duration
from utils.runs.folders import partial_path, save_atomically, write_history_row
from utils.training.optimizers import base_learning_rate

BEST_MODEL_FILE = "best.keras"
HISTORY_FILE = "history.csv"


class ProgressLine(keras.callbacks.Callback):
    """After each epoch, one line: the model (which of how many), the epoch of those planned, its
    time, and when the model and the run should end at that pace.

    Args:
        label: e.g. "fast_cnn (model 1 of 2)".
        planned_epochs: the model's epochs over all its phases.
        later_seconds: estimated seconds of the models after this one (0 when it is the last,
            None when unknown).
    """

    def __init__(self, label, planned_epochs, later_seconds=0.0):
        super().__init__()
        self.label, self.planned_epochs, self.later_seconds = label, planned_epochs, later_seconds

    def on_epoch_end(self, epoch, logs=None):
        seconds = logs["epoch_seconds"]  # EpochTimer's, which runs first
        model_end = time.time() + (self.planned_epochs - epoch - 1) * seconds
        line = (
            f"{self.label}: epoch {epoch + 1} of {self.planned_epochs} took {duration(seconds)}; "
            f"the model should end about {clock_time(model_end)}"
        )
        if self.later_seconds is None:
            line += ", then the later models (no estimate)"
        elif self.later_seconds:
            line += f", the run about {clock_time(model_end + self.later_seconds)}"
        print(line, flush=True)


class EpochTimer(keras.callbacks.Callback):
    """Adds each epoch's wall time and learning rate to the logs (so history.csv has them)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_seconds"] = time.perf_counter() - self._start
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(base_learning_rate(self.model.optimizer)))


def scheduled_sides(start, end, epochs, multiple=8):
    """Image sides for `epochs` epochs rising linearly from `start` to `end`, each a multiple of
    `multiple` (but the first and last, which are `start` and `end`)."""
    if epochs == 1:
        return [end]
    sides = [start + (end - start) * epoch / (epochs - 1) for epoch in range(epochs)]
    return [start, *(int(multiple * round(side / multiple)) for side in sides[1:-1]), end]


class ImageSizeSchedule(keras.callbacks.Callback):
    """Sets a `ResizeToSide` layer's side at the start of each epoch from `sides` (the first for
    epoch `first_epoch`) and adds it to the logs as `image_size`."""

    def __init__(self, layer, sides, first_epoch):
        super().__init__()
        self.layer, self.sides, self.first_epoch = layer, sides, first_epoch

    def _side(self, epoch):
        return self.sides[min(max(epoch - self.first_epoch, 0), len(self.sides) - 1)]

    def on_epoch_begin(self, epoch, logs=None):
        self.layer.side.assign(self._side(epoch))

    def on_epoch_end(self, epoch, logs=None):
        logs["image_size"] = self._side(epoch)


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite, remembering the epoch
    (from 0) in `nan_epoch` so the caller can say where it happened."""

    nan_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            self.nan_epoch = self._epoch
            self.model.stop_training = True


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that writes each model to a temporary file and renames it over the last
    one, so an interruption during the write never leaves a half-written best model."""

    def _save_model(self, epoch, batch, logs):
        final = self.filepath
        partial = partial_path(final)
        if os.path.exists(partial):  # left by an earlier interruption
            os.remove(partial)
        self.filepath = partial
        try:
            super()._save_model(epoch, batch, logs)
        finally:
            self.filepath = final
        if os.path.exists(partial):
            os.replace(partial, final)


class EpochBackup(keras.callbacks.Callback):
    """Backs the training state (weights and optimizer) up as each epoch begins, so a rerun
    resumes from the last finished epoch.

    Each backup is one file, `epoch-N.weights.h5` for N finished epochs, written under a temporary
    name and renamed, then the older one removed: a kill at any moment leaves at least one whole
    backup whose name says its epoch (Keras's BackupAndRestore keeps the epoch in a separate JSON
    file that a kill can leave empty, which stops every rerun). It is written at the start of the
    next epoch, after every end-of-epoch callback (checkpoint and history row included) and after
    `SwapEMAWeights` has put the trained weights back; the last epoch needs none, its phase's
    weights being saved next. The folder is kept when training ends; `remove_backup` deletes it
    once the phase's result is safely written.
    """

    PATTERN = re.compile(r"epoch-(\d+)\.weights\.h5")

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def backups(self):
        """(epoch, path) of the whole backups in the folder, newest first."""
        if not os.path.isdir(self.folder):
            return []
        matches = filter(None, map(self.PATTERN.fullmatch, os.listdir(self.folder)))
        found = sorted(((int(match[1]), match[0]) for match in matches), reverse=True)
        return [(epoch, os.path.join(self.folder, name)) for epoch, name in found]

    def on_train_begin(self, logs=None):
        # fit starts at model._initial_epoch when set; it must not carry over from an earlier fit.
        self.model._initial_epoch = None
        self._first_epoch = True
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        for epoch, path in self.backups():
            try:
                self.model.load_weights(path)
            except (OSError, ValueError) as error:
                message = f"Skipping the unreadable backup {path} ({error}); trying an older one."
                warnings.warn(message, stacklevel=2)
                continue
            self.model._initial_epoch = epoch
            return

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch:  # nothing new since the start (or the backup it resumed from)
            self._first_epoch = False
            return
        os.makedirs(self.folder, exist_ok=True)
        save_atomically(self.model.save_weights, os.path.join(self.folder, f"epoch-{epoch}.weights.h5"))
        for _, older in self.backups()[1:]:
            os.remove(older)


def remove_backup(model_dir, phase):
    """Delete a finished phase's `EpochBackup` folder, and the backup folder once it is empty."""
    folder = backup_folder(model_dir, phase)
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # another phase's backup is still in it
        os.rmdir(os.path.dirname(folder))


def backup_folder(model_dir, phase):
    return os.path.join(model_dir, "backup", phase)


class HistoryWriter(keras.callbacks.Callback):
    """Writes every epoch's logs to history.csv (`utils.runs.folders.write_history_row`): one row per
    epoch, an epoch run again after a resume replacing its row, the file replaced atomically."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        write_history_row(self.path, epoch, {key: float(value) for key, value in (logs or {}).items()})


def best_so_far(history, monitor):
    """Best value of `monitor` in earlier epochs (None if none), so a resumed checkpoint
    does not overwrite a better model."""
    values = history.get(monitor, [])
    if not values:
        return None
    return max(values) if "acc" in monitor else min(values)


class Lookahead(keras.callbacks.Callback):
    """Lookahead weight averaging with a growing pull, as in airbench (arXiv 2404.00498).

    Every `every` steps the weights (BatchNorm statistics included) are pulled towards a
    slow copy: slow = alpha * slow + (1 - alpha) * weights, then weights = slow. alpha
    grows from 0 to `max_alpha` with the cube of the phase's progress (its steps counted from
    epoch `first_epoch` to fit's last), so early training is untouched and the end averages
    strongly; training ends on the slow weights. The slow copy starts from the weights fit
    starts with: placed after `EpochBackup`, a resumed run's restored ones.
    """

    def __init__(self, every, first_epoch=0, max_alpha=0.95**5):
        super().__init__()
        self.every = every
        self.first_epoch = first_epoch
        self.max_alpha = max_alpha

    def on_train_begin(self, logs=None):
        self.total_steps = (self.params["epochs"] - self.first_epoch) * self.params["steps"]
        self.slow = [np.array(weight.numpy()) for weight in self.model.weights]

    def on_epoch_begin(self, epoch, logs=None):
        self.steps_before = (epoch - self.first_epoch) * self.params["steps"]

    def on_train_batch_end(self, batch, logs=None):
        step = self.steps_before + batch + 1
        if step % self.every == 0:
            progress = min(step / self.total_steps, 1.0)
            self.pull(self.max_alpha * progress**3)

    def on_train_end(self, logs=None):
        self.pull(1.0)

    def pull(self, alpha):
        for slow, weight in zip(self.slow, self.model.weights):
            slow *= alpha
            slow += (1 - alpha) * weight.numpy()
            weight.assign(slow)


def make_callbacks(
    settings, model_dir, monitor, phase, history, first_epoch, phase_callbacks=(), ema_momentum=None
):
    """The callbacks the "callbacks" section `settings` switches on, writing into `model_dir`, for a
    phase whose first epoch is `first_epoch`; `phase_callbacks` run first, so what they add to the
    logs reaches history.csv; with `ema_momentum` (the optimizer's weight average) the average is
    swapped in at each epoch's end.

    At each epoch's end the checkpoint decides before the history row is written, and the backup
    comes at the next epoch's start: a resumed run's best-so-far (read from history.csv) then
    always describes what best.keras holds. A kill between the row and the backup runs that
    epoch again, its row replaced.
    """
    callbacks = [EpochTimer(), *phase_callbacks]
    if ema_momentum is not None:
        # Before the checkpoint and the backup: from the end of each epoch to the start of the next
        # the model holds the averaged weights, which validation and the checkpoint use; the
        # backup, at the next start, gets the trained weights and their average.
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    if settings.terminate_on_nan:
        callbacks.append(StopOnNaN())
    if settings.checkpoint:
        callbacks.append(
            AtomicModelCheckpoint(
                os.path.join(model_dir, BEST_MODEL_FILE),
                monitor=monitor,
                save_best_only=True,
                initial_value_threshold=best_so_far(history, monitor),
            )
        )
    callbacks.append(HistoryWriter(os.path.join(model_dir, HISTORY_FILE)))
    if settings.backup_and_restore:
        callbacks.append(EpochBackup(backup_folder(model_dir, phase)))
    if settings.lookahead_steps:
        callbacks.append(Lookahead(settings.lookahead_steps, first_epoch))
    if settings.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                patience=settings.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    if settings.reduce_lr_patience:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor,
                factor=settings.reduce_lr_factor,
                patience=settings.reduce_lr_patience,
            )
        )
    if settings.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(model_dir, "tensorboard")))
    return callbacks
