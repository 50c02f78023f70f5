"""The resumable phase-by-phase training loop: fitting, files, NaN, kills and resuming, phases."""

import os

import keras
import numpy as np
import pytest

from models import parts
from tests.utils.training.helpers import Interrupt
from utils.config.resolve import resolve_args
from utils.errors import TrainingError
from utils.runs.folders import open_run, read_history, read_json
from utils.steps import build_for_run, load_data, make_datasets, train_one, training_settings
from utils.training.loop import plan_phases


def test_short_fit_lowers_loss_and_writes_its_files(prepared):
    args, datasets, run = prepared
    trained = train_one(build_for_run("lenet", args), datasets, args, run)
    history = trained.history
    assert history["epoch"] == [0, 1, 2]
    assert history["loss"][-1] < history["loss"][0]
    assert {"val_loss", "val_accuracy", "epoch_seconds", "learning_rate"} <= set(history)
    model_dir = run.model_dir("lenet")
    assert os.path.isfile(os.path.join(model_dir, "best.keras"))
    assert trained.train_seconds == pytest.approx(sum(history["epoch_seconds"]))
    # The best epoch's weights (lowest val_loss) are the ones restored.
    best = keras.models.load_model(os.path.join(model_dir, "best.keras"))
    for a, b in zip(best.weights, trained.model.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_optional_callbacks_write_their_files(tiny_args):
    args = resolve_args(
        {
            **tiny_args,
            "epochs": 2,
            "tensorboard": True,
            "early_stopping_patience": 1,
            "lr_schedule": "constant",
            "reduce_lr_patience": 1,
        }
    )
    datasets = make_datasets(load_data(args), args)
    run = open_run(args["output_dir"], args, args["run_name"])
    train_one(build_for_run("custom_cnn", args), datasets, args, run)
    files = os.listdir(run.model_dir("custom_cnn"))
    assert {"history.csv", "best.keras", "tensorboard", "state.json"} <= set(files)
    assert os.listdir(os.path.join(run.model_dir("custom_cnn"), "tensorboard"))


class PoisonWeights(keras.callbacks.Callback):
    """Sets the classifier's kernel to NaN after the first batch of epoch `epoch` (from 0); a NaN
    in an early layer can vanish in ReLU and max-pooling."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0 and self._epoch == self.epoch:
            kernel = self.model.get_layer("predictions").kernel
            kernel.assign(np.full(kernel.shape, np.nan, kernel.dtype))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


def test_nan_loss_stops_with_the_epoch_and_keeps_what_was_trained(prepared):
    args, datasets, run = prepared
    with pytest.raises(TrainingError, match="loss became NaN or infinite in epoch 2 \\(train phase\\)"):
        train_one(build_for_run("lenet", args), datasets, args, run, [PoisonWeights(epoch=1)])
    model_dir = run.model_dir("lenet")
    history = read_history(os.path.join(model_dir, "history.csv"))
    assert np.isfinite(history["loss"][0])
    best = keras.models.load_model(os.path.join(model_dir, "best.keras"))
    assert all(np.all(np.isfinite(np.asarray(weight))) for weight in best.weights)
    state = read_json(os.path.join(model_dir, "state.json"))
    assert not state["phases"]["train"]["done"]  # the NaN weights were not kept as a finished phase
    assert not os.path.exists(os.path.join(model_dir, "phase_train.weights.h5"))


@pytest.mark.slow  # a training run of several phases or a subprocess
def test_interrupted_run_resumes_from_its_last_epoch(prepared):
    args, datasets, run = prepared
    with pytest.raises(KeyboardInterrupt):
        train_one(build_for_run("lenet", args), datasets, args, run, [Interrupt(after_epochs=2)])
    assert read_history(os.path.join(run.model_dir("lenet"), "history.csv"))["epoch"] == [0, 1]

    resumed_run = open_run(args["output_dir"], args, args["run_name"])  # the same command again
    assert resumed_run == type(run)(run.path, resumed=True)
    counter = Interrupt(after_epochs=99)
    trained = train_one(build_for_run("lenet", args), datasets, args, resumed_run, [counter])
    assert counter.epochs_run == 1  # only the missing third epoch ran
    assert trained.history["epoch"] == [0, 1, 2]


def test_resume_survives_broken_backups_and_a_cut_history_row(prepared):
    args, datasets, run = prepared
    with pytest.raises(KeyboardInterrupt):
        train_one(build_for_run("lenet", args), datasets, args, run, [Interrupt(after_epochs=2)])
    backup = os.path.join(run.model_dir("lenet"), "backup", "train")
    assert os.listdir(backup) == ["epoch-2.weights.h5"]  # the older backup was removed
    for name in ("epoch-3.partial.weights.h5", "epoch-3.weights.h5"):
        with open(os.path.join(backup, name), "wb") as handle:
            handle.write(b"half a file")  # as a kill during the write (or a bad disk) would leave it
    history_path = os.path.join(run.model_dir("lenet"), "history.csv")
    with open(history_path, "a", encoding="utf-8") as handle:
        handle.write("2,0.1")  # and a history row cut short
    counter = Interrupt(after_epochs=99)
    with pytest.warns(UserWarning, match="Skipping the unreadable backup .*epoch-3.weights.h5"):
        trained = train_one(build_for_run("lenet", args), datasets, args, run, [counter])
    assert counter.epochs_run == 1  # resumed from the whole backup of epoch 2
    assert trained.history["epoch"] == [0, 1, 2]
    with open(history_path, encoding="utf-8") as handle:
        rows = handle.read().splitlines()
    assert [row.split(",")[0] for row in rows] == ["epoch", "0", "1", "2"]  # one row per epoch
    assert not os.path.exists(os.path.dirname(backup))  # removed once the phase was done


def killed_at_call(cls, method, call):
    """`cls.method` patched to raise KeyboardInterrupt (a kill) at its `call`-th call."""
    original, calls = getattr(cls, method), []

    def patched(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    return patched


@pytest.mark.slow  # a training run of several phases or a subprocess
@pytest.mark.parametrize(
    "class_name, method, call, rows_left",
    [
        ("AtomicModelCheckpoint", "_save_model", 1, []),  # writing epoch 1's best model: no row yet
        ("EpochBackup", "on_epoch_begin", 2, [0]),  # backing epoch 1 up, as epoch 2 begins
    ],
)
def test_a_kill_at_the_end_of_an_epoch_runs_it_again_and_keeps_the_best_model(
    prepared, monkeypatch, class_name, method, call, rows_left
):
    from utils.training import callbacks

    args, datasets, run = prepared
    cls = getattr(callbacks, class_name)
    with monkeypatch.context() as patch:
        patch.setattr(cls, method, killed_at_call(cls, method, call))
        with pytest.raises(KeyboardInterrupt):
            train_one(build_for_run("lenet", args), datasets, args, run)
    model_dir = run.model_dir("lenet")
    assert read_history(os.path.join(model_dir, "history.csv")).get("epoch", []) == rows_left
    counter = Interrupt(after_epochs=99)
    trained = train_one(build_for_run("lenet", args), datasets, args, run, [counter])
    assert counter.epochs_run == 3  # no backup of epoch 1: it runs again and replaces its row
    assert trained.history["epoch"] == [0, 1, 2]
    # best.keras holds the epoch that history.csv says is best, whichever the kill hit.
    best = keras.models.load_model(os.path.join(model_dir, "best.keras"))
    validation_loss = best.evaluate(datasets.validation, verbose=0)[0]
    assert validation_loss == pytest.approx(min(trained.history["val_loss"]), rel=1e-4)


@pytest.mark.slow  # a training run of several phases or a subprocess
def test_resume_mid_training_then_fine_tunes_from_the_planned_epoch(tiny_args):
    """A fit resumed from a backup must not make the next phase's fit start at that epoch."""
    args = resolve_args(
        {**tiny_args, "models": ["mobilenetv2"], "weights": None, "epochs": 2, "fine_tune_epochs": 2}
    )
    datasets = make_datasets(load_data(args), args)
    run = open_run(args["output_dir"], args, args["run_name"])
    with pytest.raises(KeyboardInterrupt):
        train_one(build_for_run("mobilenetv2", args), datasets, args, run, [Interrupt(after_epochs=1)])
    counter = Interrupt(after_epochs=99)
    trained = train_one(build_for_run("mobilenetv2", args), datasets, args, run, [counter])
    assert counter.epochs_run == 3  # the second training epoch, then two of fine-tuning
    assert trained.history["epoch"] == [0, 1, 2, 3]
    assert trained.fine_tune_start_epoch == 2


def test_checkpoint_interrupted_while_writing_keeps_the_previous_best(tmp_path, monkeypatch):
    from utils.training.callbacks import AtomicModelCheckpoint

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = str(tmp_path / "best.keras")
    checkpoint = AtomicModelCheckpoint(path, monitor="loss", save_best_only=True)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"loss": 1.0})
    saved = [np.asarray(weight) for weight in model.weights]

    def killed_while_writing(filepath, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"half a model")
        raise KeyboardInterrupt

    model.weights[0].assign(np.ones((3, 2)))
    monkeypatch.setattr(model, "save", killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.on_epoch_end(1, {"loss": 0.5})
    for expected, actual in zip(saved, keras.models.load_model(path).weights):
        np.testing.assert_array_equal(expected, np.asarray(actual))


def test_finished_phases_are_skipped_on_rerun(prepared):
    args, datasets, run = prepared
    first = train_one(build_for_run("lenet", args), datasets, args, run)
    counter = Interrupt(after_epochs=99)
    again = train_one(build_for_run("lenet", args), datasets, args, run, [counter])
    assert counter.epochs_run == 0
    assert again.history == first.history


@pytest.mark.slow  # a training run of several phases or a subprocess
def test_fine_tuning_continues_one_history(tiny_args):
    args = resolve_args(
        {
            **tiny_args,
            "models": ["mobilenetv2"],
            "weights": None,
            "epochs": 2,
            "fine_tune_epochs": 2,
            "fine_tune_layers": 5,
        }
    )
    datasets = make_datasets(load_data(args), args)
    run = open_run(args["output_dir"], args, args["run_name"])
    trained = train_one(build_for_run("mobilenetv2", args), datasets, args, run)
    assert trained.history["epoch"] == [0, 1, 2, 3]
    assert trained.fine_tune_start_epoch == 2
    lr = trained.history["learning_rate"]
    assert max(lr[2:]) <= args["learning_rate"] * args["fine_tune_lr_factor"] + 1e-9
    state = read_json(os.path.join(run.model_dir("mobilenetv2"), "state.json"))
    assert state["phases"]["fine_tune"] == {"first_epoch": 2, "done": True}
    backbone = parts.backbone(trained.model)
    assert sum(1 for layer in backbone.layers if layer.trainable and layer.weights) == 5


def test_each_model_is_built_and_trained_with_its_own_args(tiny_args):
    from models import parts

    own = {"lenet": {"epochs": 2}, "efficientnet_lite0": {"image_size": 48}}
    args = resolve_args({**tiny_args, "models": ["lenet"], "epochs": 1, "weights": None, "model_args": own})
    datasets = make_datasets(load_data(args), args)
    trained = train_one(
        build_for_run("lenet", args), datasets, args, open_run(args["output_dir"], args, args["run_name"])
    )
    assert trained.history["epoch"] == [0, 1]
    assert parts.backbone(build_for_run("efficientnet_lite0", args)).input.shape[1] == 48
    assert (
        parts.backbone(build_for_run("efficientnet_lite0", {**args, "model_args": {}})).input.shape[1] == 32
    )


def test_fine_tuning_is_planned_only_for_backbones():
    args = resolve_args({"fine_tune_epochs": 3})
    assert [p.name for p in plan_phases(training_settings(args), has_backbone=True)] == ["train", "fine_tune"]
    assert [p.name for p in plan_phases(training_settings(args), has_backbone=False)] == ["train"]
    assert [
        p.name for p in plan_phases(training_settings({**args, "fine_tune_layers": 0}), has_backbone=True)
    ] == ["train"]
