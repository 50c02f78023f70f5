"""Freezing, compiling and the resumable two-phase training loop."""

import dataclasses
import math
import os
import time

import keras

from models import adapt_to_images, parts
from models.pretrained.backbones import resizable_side
from utils.config.sections import Section
from utils.data.features import feature_split
from utils.data.pipeline import make_dataset
from utils.errors import TrainingError
from utils.runs.folders import read_history, read_json, save_atomically, write_json
from utils.runtime.distribution import validation_batches
from utils.runtime.environment import choose_jit_compile
from utils.training.callbacks import (
    BEST_MODEL_FILE,
    HISTORY_FILE,
    ImageSizeSchedule,
    StopOnNaN,
    make_callbacks,
    remove_backup,
    scheduled_sides,
)
from utils.training.optimizers import make_optimizer, make_schedule, steps_per_epoch

FINAL_MODEL_FILE = "final.keras"
STATE_FILE = "state.json"


def tested_model_file(model_dir):
    """The model file a run tests in `model_dir`: best.keras (chosen on validation), else
    final.keras (a run without validation); None when it holds neither."""
    saved = [os.path.join(model_dir, name) for name in (BEST_MODEL_FILE, FINAL_MODEL_FILE)]
    return next((path for path in saved if os.path.isfile(path)), None)


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """What the training stage reads: its three sections of args (`utils.config.sections.section`)
    and three values of the runtime's. `utils.steps.training_settings` makes it."""

    optimizer: Section
    training: Section
    callbacks: Section
    seed: int
    jit_compile: str | bool = "auto"
    distribute: str = "none"


# --- compiling ------------------------------------------------------------------------
def fine_tune_rate_factors(model, factor):
    """{path: `factor`} (args["fine_tune_backbone_lr_factor"]) for the backbone's unfrozen
    weights, so fine-tuning can move the pretrained layers more gently than the new head."""
    return {weight.path: factor for weight in parts.backbone(model).trainable_weights}


def compile_model(model, settings, learning_rate, rate_factors=None):
    """(Re)compile after any change of `trainable`; labels are one-hot."""
    model.compile(
        optimizer=make_optimizer(
            settings.optimizer,
            learning_rate,
            rate_factors,
            classifier=parts.classifier_kernel(model),
            matrices=inner_matrices(model),
        ),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=settings.training.label_smoothing),
        metrics=["accuracy"],
        jit_compile=choose_jit_compile(settings.jit_compile),
    )


def inner_matrices(model):
    """Paths of the model's trainable kernels and weight matrices, but its classifier's."""
    classifier = parts.classifier_kernel(model)
    return [
        weight.path
        for weight in model.trainable_weights
        if len(weight.shape) >= 2 and weight.path != classifier
    ]


# --- freezing -------------------------------------------------------------------------
def trainable_weight_count(model):
    return sum(int(math.prod(w.shape)) for w in model.trainable_weights)


def unfreeze_top(backbone, num_layers):
    """Unfreeze the top `num_layers` weighted layers of `backbone` ("all": every one).

    BatchNormalization layers stay frozen: Keras 3 `fit()` would otherwise update their
    statistics despite the `training=False` the backbone was called with.

    Returns:
        Names of the layers opened, bottom to top.
    """
    backbone.trainable = True
    weighted = [
        layer
        for layer in backbone.layers
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    opened = weighted if num_layers == "all" else weighted[len(weighted) - num_layers :]
    opened_ids = {id(layer) for layer in opened}
    for layer in backbone.layers:
        layer.trainable = id(layer) in opened_ids
    return [layer.name for layer in opened]


# --- the training loop ----------------------------------------------------------------
@dataclasses.dataclass
class Phase:
    """One `fit()` call: the head (or whole model), or fine-tuning of an unfrozen backbone."""

    name: str
    epochs: int
    learning_rate: float


@dataclasses.dataclass
class TrainedModel:
    """A trained model with its whole history (both phases) and timing."""

    name: str
    model: keras.Model
    history: dict
    train_seconds: float
    fine_tune_start_epoch: int | None = None
    seed: int | None = None  # set when the run trains each model once per seed (args["seeds"])

    @property
    def label(self):
        """The model's name, with its seed when the run has several."""
        return self.name if self.seed is None else f"{self.name} seed {self.seed}"


def plan_phases(settings, has_backbone):
    """The head phase, plus fine-tuning for a backbone when the settings ask for it."""
    phases = [Phase("train", settings.training.epochs, settings.optimizer.learning_rate)]
    if has_backbone and settings.training.fine_tune_layers != 0 and settings.training.fine_tune_epochs > 0:
        phases.append(
            Phase(
                "fine_tune",
                settings.training.fine_tune_epochs,
                settings.optimizer.learning_rate * settings.training.fine_tune_lr_factor,
            )
        )
    return phases


def monitored_metric(has_validation):
    return "val_loss" if has_validation else "loss"


@dataclasses.dataclass
class _PhaseRun:
    """What one phase's fit needs besides the model, data and settings."""

    phase: Phase
    first_epoch: int
    model_dir: str
    history: dict
    extra_callbacks: tuple

    def fit(self, model, settings, train, validation, steps_per_epoch, callbacks=None):
        """Compile `model` with the phase's schedule and fit it with the callbacks the settings (or
        the "callbacks" section `callbacks`) switch on, and the image size schedule of a model whose
        side can change, while fine-tuning."""
        total_steps = self.phase.epochs * steps_per_epoch
        warmup_steps = round(settings.optimizer.warmup_epochs * steps_per_epoch)
        rate_factors = (
            fine_tune_rate_factors(model, settings.training.fine_tune_backbone_lr_factor)
            if self.phase.name == "fine_tune"
            else None
        )
        schedule = make_schedule(
            settings.optimizer.lr_schedule, self.phase.learning_rate, total_steps, warmup_steps
        )
        compile_model(model, settings, schedule, rate_factors)
        monitor = monitored_metric(validation is not None)
        callbacks = make_callbacks(
            callbacks or settings.callbacks,
            self.model_dir,
            monitor,
            self.phase.name,
            self.history,
            self.first_epoch,
            self._size_schedule(model),
            settings.optimizer.ema_momentum,
        )
        model.fit(
            train,
            validation_data=validation,
            initial_epoch=self.first_epoch,
            epochs=self.first_epoch + self.phase.epochs,
            steps_per_epoch=steps_per_epoch,
            shuffle=False,  # the pipeline shuffles; Keras would warn that it ignores shuffle=True
            callbacks=callbacks + list(self.extra_callbacks),
            verbose=settings.training.verbose,
        )
        self._refuse_nan(callbacks)

    def _size_schedule(self, model):
        layer = resizable_side(model)
        if layer is None or self.phase.name != "fine_tune":
            return ()
        sides = scheduled_sides(layer.initial_side, layer.final_side, self.phase.epochs)
        return (ImageSizeSchedule(layer, sides, self.first_epoch),)

    def _refuse_nan(self, callbacks):
        """Raise instead of keeping weights whose loss went NaN as a finished phase."""
        for callback in callbacks:
            if isinstance(callback, StopOnNaN) and callback.nan_epoch is not None:
                raise TrainingError(
                    f"Training in {self.model_dir} stopped: the loss became NaN or infinite in epoch "
                    f"{callback.nan_epoch + 1} ({self.phase.name} phase). history.csv keeps every epoch up "
                    "to it and best.keras the best model before it (with args['checkpoint'] on). "
                    "Lower args['learning_rate'] (or raise args['warmup_epochs']) and run again."
                )


def uses_feature_cache(model, phase, datasets, feature_cache):
    """Whether this phase can train the head on cached features (`feature_cache`, args["feature_cache"],
    on): a frozen backbone, no augmentation."""
    return (
        feature_cache
        and phase.name == "train"
        and parts.has_backbone(model)
        and datasets.augmenter is None
        and not datasets.mixers
    )


def _fit_head_on_features(model, run, datasets, settings, record):
    """Train the head on cached backbone features; the head shares its weights with `model`.

    Its epoch backup and checkpoint are off (the phase takes seconds); the full model
    is saved as best.keras afterwards, EarlyStopping having restored the best head.
    """
    start = time.perf_counter()
    data, cache_dir, batch = datasets.data, settings.training.feature_cache_dir, settings.training.batch_size
    verbose = settings.training.verbose
    train = make_dataset(
        feature_split(model, data.train, cache_dir, batch, verbose), batch, training=True, seed=settings.seed
    )
    validation = (
        None
        if data.validation is None
        else make_dataset(
            feature_split(model, data.validation, cache_dir, batch, verbose),
            batch,
            training=False,
            whole_batches=validation_batches(settings.distribute, batch, len(data.validation)),
        )
    )
    record["feature_seconds"] = time.perf_counter() - start
    no_files = settings.callbacks.replace(checkpoint=False, backup_and_restore=False)
    run.fit(
        parts.head_model(model),
        settings,
        train,
        validation,
        steps_per_epoch(len(data.train), batch),
        no_files,
    )
    if settings.callbacks.checkpoint:
        save_atomically(model.save, os.path.join(run.model_dir, BEST_MODEL_FILE))


def train_model(name, model, datasets, settings, model_dir, extra_callbacks=()):
    """Train `model` phase by phase, resuming whatever an interrupted run left behind.

    Data-dependent layers (patch whitening) are fitted on the training images first. A
    frozen-backbone phase without augmentation trains the head on cached features. A
    finished phase is recorded in `state.json` with its weights, so rerunning the same
    command skips it; an unfinished one resumes from its epoch backup (`EpochBackup`).
    The best weights (by the monitored metric) are restored at the end.

    Args:
        settings: a `TrainingSettings`.
        extra_callbacks: callbacks added after the ones the settings choose (benchmarks, tests).
    """
    adapt_to_images(model, datasets.data.train.images)
    os.makedirs(model_dir, exist_ok=True)
    state_path = os.path.join(model_dir, STATE_FILE)
    state = read_json(state_path, default={"phases": {}})
    history_path = os.path.join(model_dir, HISTORY_FILE)
    for phase in plan_phases(settings, parts.has_backbone(model)):
        if phase.name not in state["phases"]:
            first_epoch = len(read_history(history_path).get("epoch", []))
            state["phases"][phase.name] = {"first_epoch": first_epoch, "done": False}
            write_json(state_path, state)
        record = state["phases"][phase.name]
        if phase.name == "fine_tune":
            unfreeze_top(parts.backbone(model), settings.training.fine_tune_layers)
        weights_path = os.path.join(model_dir, f"phase_{phase.name}.weights.h5")
        if record["done"]:
            model.load_weights(weights_path)
            continue
        run = _PhaseRun(
            phase, record["first_epoch"], model_dir, read_history(history_path), tuple(extra_callbacks)
        )
        if uses_feature_cache(model, phase, datasets, settings.training.feature_cache):
            _fit_head_on_features(model, run, datasets, settings, record)
        else:
            run.fit(model, settings, datasets.train, datasets.validation, datasets.steps_per_epoch)
        save_atomically(model.save_weights, weights_path)
        record["done"] = True
        write_json(state_path, state)
        remove_backup(model_dir, phase.name)
    restore_best(model, model_dir)
    return trained_from_folder(name, model, model_dir)


def trained_from_folder(name, model, model_dir, seed=None):
    """A `TrainedModel` for `model` (trained with `seed` of args["seeds"], if any) with the history and
    timing recorded in `model_dir`.

    Training time is the sum of epoch times plus any feature extraction for cached features.
    """
    history = read_history(os.path.join(model_dir, HISTORY_FILE))
    state = read_json(os.path.join(model_dir, STATE_FILE), default={"phases": {}})
    fine_tune = state["phases"].get("fine_tune")
    feature_seconds = sum(phase.get("feature_seconds", 0.0) for phase in state["phases"].values())
    seconds = float(sum(history.get("epoch_seconds", [])) + feature_seconds)
    return TrainedModel(name, model, history, seconds, fine_tune and fine_tune["first_epoch"], seed)


def restore_best(model, model_dir):
    """Load best.keras weights if a checkpoint was written, else save the final model."""
    best = os.path.join(model_dir, BEST_MODEL_FILE)
    if os.path.isfile(best):
        model.load_weights(best)
    else:
        save_atomically(model.save, os.path.join(model_dir, FINAL_MODEL_FILE))


def planned_learning_rates(settings, steps, has_backbone, points_per_phase=200):
    """(epoch, learning rate) pairs sampled along every planned phase, for a preview plot."""
    epochs, rates, offset = [], [], 0
    optimizer = settings.optimizer
    for phase in plan_phases(settings, has_backbone):
        total = phase.epochs * steps
        schedule = make_schedule(
            optimizer.lr_schedule, phase.learning_rate, total, round(optimizer.warmup_epochs * steps)
        )
        for step in range(0, total, max(1, total // points_per_phase)):
            epochs.append(offset + step / steps)
            rates.append(float(schedule(step)) if callable(schedule) else schedule)
        offset += phase.epochs
    return epochs, rates
