import os

import keras
import numpy as np
import pytest

import models
from models import parts
from utils.config.resolve import resolve_args
from utils.config.sections import section
from utils.errors import TrainingError
from utils.runs.folders import open_run, read_history, read_json
from utils.steps import build_for_run, load_data, make_datasets, train_one, training_settings
from utils.training.loop import plan_phases
from utils.training.optimizers import make_schedule


@pytest.fixture
def prepared(tiny_args):
    """(args, datasets, run) for a 3-epoch lenet run on the tiny archive."""
    args = resolve_args({**tiny_args, "epochs": 3, "models": ["lenet"], "learning_rate": 0.02})
    keras.utils.set_random_seed(0)
    datasets = make_datasets(load_data(args), args)
    return args, datasets, open_run(args["output_dir"], args, args["run_name"])


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


def test_warmup_cosine_schedule_shape():
    schedule = make_schedule("warmup_cosine", 0.1, total_steps=100, warmup_steps=10)
    rates = [float(schedule(step)) for step in range(101)]
    assert rates[0] == pytest.approx(0.0)
    assert rates[10] == pytest.approx(0.1)
    assert all(a <= b for a, b in zip(rates[:10], rates[1:11]))  # rising warmup
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))  # decaying afterwards
    assert rates[100] == pytest.approx(0.0, abs=1e-6)


def test_constant_and_cosine_schedules():
    assert make_schedule("constant", 0.1, 100, 10) == 0.1
    cosine = make_schedule("cosine", 0.1, 100, 10)
    assert float(cosine(0)) == pytest.approx(0.1)
    assert float(cosine(50)) == pytest.approx(0.05, rel=1e-3)


@pytest.mark.parametrize("name", ["sgd", "adam", "amsgrad", "adamw", "rmsprop", "muon"])
def test_weight_decay_shrinks_kernels_but_not_batchnorm(name):
    from utils.config.sections import section
    from utils.training.optimizers import make_optimizer

    optimizer = make_optimizer(
        section(resolve_args({"optimizer": name, "weight_decay": 0.5}), "optimizer"), 0.1
    )
    kernel, gamma = keras.Variable(1.0, name="kernel"), keras.Variable(1.0, name="gamma")
    optimizer.apply_gradients([(keras.ops.zeros(()), kernel), (keras.ops.zeros(()), gamma)])
    assert float(kernel.numpy()) == pytest.approx(1 - 0.1 * 0.5)
    assert float(gamma.numpy()) == 1.0
    without = make_optimizer(section(resolve_args({"optimizer": name, "weight_decay": 0}), "optimizer"), 0.1)
    plain = keras.Variable(1.0, name="kernel")
    without.apply_gradients([(keras.ops.zeros(()), plain)])
    assert float(plain.numpy()) == 1.0


def test_warmup_linear_schedule_shape():
    schedule = make_schedule(
        resolve_args({"lr_schedule": "warmup_linear"}), 0.4, total_steps=100, warmup_steps=20
    )
    rates = [float(schedule(step)) for step in range(101)]
    assert rates[0] == 0.0 and rates[10] == pytest.approx(0.2) and rates[20] == pytest.approx(0.4)
    assert rates[60] == pytest.approx(0.2) and rates[100] == 0.0
    config = schedule.get_config()
    assert type(schedule).from_config(config).get_config() == config


class Recorder(keras.callbacks.Callback):
    """Records the single weight of the model after every step."""

    def __init__(self):
        super().__init__()
        self.values = []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append(float(self.model.weights[0].numpy().ravel()[0]))


def test_lookahead_pulls_weights_back_more_strongly_as_training_ends():
    from utils.training.callbacks import Lookahead

    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")  # slow enough to climb steadily
    x, y = np.ones((20, 1), "float32"), np.full((20, 1), 100.0, "float32")  # the weight climbs every step
    plain = Recorder()
    model.fit(x, y, batch_size=1, epochs=1, verbose=0, callbacks=[plain])
    model.set_weights([np.zeros((1, 1))])
    averaged = Recorder()
    model.fit(x, y, batch_size=1, epochs=1, verbose=0, callbacks=[Lookahead(5), averaged])
    # Lookahead runs before the recorder, so values at steps 5, 10, 15, 20 are after each pull.
    assert averaged.values[3] == plain.values[3]  # no pull before step 5
    assert averaged.values[4] == pytest.approx(plain.values[4], rel=0.02)  # progress 0.25: alpha 0.01
    assert averaged.values[-1] < 0.9 * plain.values[-1]  # progress 1: alpha 0.77
    pulls = [averaged.values[i] for i in (4, 9, 14, 19)]
    assert all(a < b for a, b in zip(pulls, pulls[1:]))


def test_lookahead_of_a_resumed_fit_averages_from_the_restored_weights(tiny_args, tmp_path):
    from utils.training.callbacks import make_callbacks

    args = resolve_args({**tiny_args, "lookahead_steps": 5})
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    model.optimizer.build(model.trainable_variables)
    model.set_weights([np.ones((1, 1))])
    os.makedirs(tmp_path / "backup" / "train")
    model.save_weights(str(tmp_path / "backup" / "train" / "epoch-2.weights.h5"))  # 2 of 3 epochs done
    model.set_weights([np.zeros((1, 1))])  # as a fresh process builds it
    made = make_callbacks(
        section(args, "callbacks"),
        str(tmp_path),
        "loss",
        "train",
        {},
        first_epoch=0,
        ema_momentum=args["ema_momentum"],
    )
    callbacks = keras.callbacks.CallbackList(made, model=model, epochs=3, steps=20)
    callbacks.on_train_begin()
    assert model._initial_epoch == 2 and model.get_weights()[0][0, 0] == 1.0  # restored
    callbacks.on_epoch_begin(2)
    model.set_weights([np.full((1, 1), 3.0)])  # trained on from 1 to 3
    for batch in range(5):
        callbacks.on_train_batch_end(batch)
    # Step 45 of the phase's 60: alpha = 0.95**5 * 0.75**3, towards the restored weight 1.
    alpha = 0.95**5 * 0.75**3
    assert model.get_weights()[0][0, 0] == pytest.approx(alpha * 1.0 + (1 - alpha) * 3.0, rel=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adam", "amsgrad", "adamw", "rmsprop", "muon"])
def test_rate_factors_scale_single_variables_steps(name):
    from utils.training.optimizers import make_optimizer

    gentle, normal = keras.Variable(1.0, name="gentle"), keras.Variable(1.0, name="normal")
    args = resolve_args({"optimizer": name, "weight_decay": 0})
    optimizer = make_optimizer(section(args, "optimizer"), 0.1, rate_factors={gentle.path: 0.25})
    gradient = keras.ops.ones(())
    optimizer.apply_gradients([(gradient, gentle), (gradient, normal)])
    step_gentle, step_normal = 1 - float(gentle.numpy()), 1 - float(normal.numpy())
    assert step_normal > 0 and step_gentle == pytest.approx(0.25 * step_normal, rel=1e-5)


def test_fine_tune_rate_factors_cover_exactly_the_unfrozen_backbone():
    from models import parts
    from utils.training.loop import fine_tune_rate_factors, unfreeze_top

    args = resolve_args({"fine_tune_backbone_lr_factor": 0.1})
    model = models.build_model("mobilenetv2", weights=None)
    unfreeze_top(parts.backbone(model), 3)
    factors = fine_tune_rate_factors(model, args["fine_tune_backbone_lr_factor"])
    backbone_paths = {w.path for w in parts.backbone(model).trainable_weights}
    assert set(factors) == backbone_paths and len(backbone_paths) == 3
    assert set(factors.values()) == {0.1}
    head_paths = {w.path for w in model.get_layer("predictions").weights}
    assert not head_paths & set(factors)


def test_amsgrad_is_adam_with_the_running_maximum():
    from utils.training.optimizers import make_optimizer

    amsgrad = make_optimizer(section(resolve_args({"optimizer": "amsgrad"}), "optimizer"), 0.1)
    adam = make_optimizer(section(resolve_args({"optimizer": "adam"}), "optimizer"), 0.1)
    assert isinstance(amsgrad, keras.optimizers.Adam) and amsgrad.amsgrad and not adam.amsgrad


def test_muon_orthogonalises_convolution_kernels_and_leaves_the_classifier_to_adamw():
    from utils.training.optimizers import make_optimizer

    rng = np.random.default_rng(0)
    kernel = keras.Variable(np.zeros((3, 3, 4, 8), "float32"), name="kernel")
    classifier = keras.Variable(np.zeros((8, 10), "float32"), name="classifier")
    args = resolve_args({"optimizer": "muon", "weight_decay": 0})
    optimizer = make_optimizer(section(args, "optimizer"), 0.01, classifier=classifier.path)
    # a gradient whose singular values span a factor of 50
    left, _ = np.linalg.qr(rng.normal(size=(36, 8)))
    right, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    kernel_gradient = (left @ np.diag(np.geomspace(1, 0.02, 8)) @ right.T).astype("float32")
    classifier_gradient = rng.normal(size=(8, 10)).astype("float32")
    optimizer.apply_gradients(
        [(kernel_gradient.reshape(3, 3, 4, 8), kernel), (classifier_gradient, classifier)]
    )
    singular = np.linalg.svd(-kernel.numpy().reshape(36, 8), compute_uv=False)
    assert singular.max() / singular.min() < 2  # near-orthogonal, as a (36, 8) matrix
    # the classifier took Adam's first step instead: learning rate times the gradient's sign
    np.testing.assert_allclose(-classifier.numpy(), 0.01 * np.sign(classifier_gradient), rtol=1e-3)


def test_fast_cnn_with_muon_trains_saves_and_loads(tmp_path):
    from models.parts import classifier_kernel
    from utils.training.loop import compile_model

    args = resolve_args({"optimizer": "muon", "learning_rate": 0.02, "momentum": 0.6, "precision": "float32"})
    model = models.build_model("fast_cnn", widths=(8, 16, 16))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, 10, 64), 10)
    models.adapt_to_images(model, images)
    compile_model(model, training_settings(args), args["learning_rate"])
    assert classifier_kernel(model) == model.get_layer("logits").kernel.path
    assert model.optimizer.exclude_layers and not model.optimizer._should_use_adamw(
        model.get_layer("block1_conv1").kernel
    )
    losses = model.fit(images, labels, batch_size=32, epochs=6, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    model.save(tmp_path / "muon.keras")
    loaded = keras.saving.load_model(tmp_path / "muon.keras")
    assert type(loaded.optimizer).__name__ == "FactorMuon"
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


def test_muon_sgd_routes_kernels_to_muon_with_held_norms_and_the_rest_to_sgd():
    from utils.training.optimizers import FactorMuon, FactorSGD, make_optimizer

    rng = np.random.default_rng(0)
    kernel = keras.Variable(rng.normal(size=(3, 3, 4, 8)).astype("float32") * 5, name="kernel")
    shift = keras.Variable(np.zeros(8, "float32"), name="shift")
    args = resolve_args({"optimizer": "muon_sgd", "momentum": 0.0, "muon_lr_factor": 0.1, "weight_decay": 0})
    optimizer = make_optimizer(section(args, "optimizer"), 0.5, matrices=[kernel.path])
    assert isinstance(optimizer, keras.optimizers.MultiOptimizer)
    assert [type(part) for part in optimizer.optimizers] == [FactorMuon, FactorSGD]
    held = kernel.numpy() * np.sqrt(8) / np.linalg.norm(kernel.numpy())
    shift_gradient = rng.normal(size=8).astype("float32")
    optimizer.apply_gradients(
        [(rng.normal(size=(3, 3, 4, 8)).astype("float32"), kernel), (shift_gradient, shift)]
    )
    # the kernel was rescaled to norm sqrt(8 output channels), then took a near-orthogonal step of
    # size 0.5 * 0.1 (3 Newton-Schulz steps leave singular values roughly in 0.5-1.5)
    singular = np.linalg.svd((held - kernel.numpy()).reshape(36, 8) / 0.05, compute_uv=False)
    assert 0.3 < singular.min() and singular.max() < 1.6
    # the shift took plain SGD's step at the full rate
    np.testing.assert_allclose(shift.numpy(), -0.5 * shift_gradient, rtol=1e-5)


def test_fast_muon_preset_trains_fast_cnn_saves_and_loads(tmp_path):
    from utils.training.loop import compile_model, inner_matrices
    from utils.training.optimizers import base_learning_rate

    args = resolve_args({"preset": "fast_muon", "precision": "float32"})
    assert args["optimizer"] == "muon_sgd" and args["lookahead_steps"] is None
    model = models.build_model("fast_cnn", widths=(8, 16, 16))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, 10, 64), 10)
    models.adapt_to_images(model, images)
    compile_model(model, training_settings(args), 0.5)
    assert set(inner_matrices(model)) == {
        model.get_layer(f"block{block}_conv{index}").kernel.path for block in (1, 2, 3) for index in (1, 2)
    }
    losses = model.fit(images, labels, batch_size=32, epochs=6, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    conv = model.get_layer("block2_conv2").kernel.numpy()
    assert abs(np.linalg.norm(conv) - 4.0) < 0.5  # held near sqrt(16 output channels)
    assert float(base_learning_rate(model.optimizer)) == 0.5
    model.save(tmp_path / "fast_muon.keras")
    loaded = keras.saving.load_model(tmp_path / "fast_muon.keras")
    assert [type(part).__name__ for part in loaded.optimizer.optimizers] == ["FactorMuon", "FactorSGD"]
    assert loaded.optimizer.optimizers[0].hold_norms
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


def test_muon_sgd_state_survives_a_weights_backup(tmp_path):
    """The epoch backups (save_weights) carry both parts of the MultiOptimizer, so a resumed run
    continues their momentum and step counts."""
    from utils.training.loop import compile_model

    args = resolve_args({"preset": "fast_muon", "precision": "float32"})
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, 10, 64), 10)

    def compiled_model():
        model = models.build_model("fast_cnn", widths=(8, 16, 16))
        models.adapt_to_images(model, images)
        compile_model(model, training_settings(args), 0.5)
        return model

    trained = compiled_model()
    trained.fit(images, labels, batch_size=32, epochs=2, verbose=0)
    trained.save_weights(tmp_path / "backup.weights.h5")
    resumed = compiled_model()
    resumed.optimizer.build(resumed.trainable_variables)
    resumed.load_weights(tmp_path / "backup.weights.h5")
    assert [int(part.iterations.numpy()) for part in resumed.optimizer.optimizers] == [4, 4]
    for saved, loaded in zip(trained.optimizer.variables, resumed.optimizer.variables, strict=True):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())


class LiveKernel(keras.callbacks.Callback):
    """Records the classifier's kernel as trained (not averaged) after every step."""

    def __init__(self):
        super().__init__()
        self.values = []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append(self.model.get_layer("predictions").kernel.numpy().copy())


def polyak_average(values, momentum):
    """Keras's optimizer EMA of a sequence of weights: the first step's value, then
    average = momentum * average + (1 - momentum) * value."""
    averages = [values[0]]
    for value in values[1:]:
        averages.append(momentum * averages[-1] + (1 - momentum) * value)
    return averages


def test_ema_momentum_validates_checkpoints_and_ends_on_the_averaged_weights(prepared):
    args, datasets, run = prepared
    args = resolve_args({**args, "ema_momentum": 0.6})
    live = LiveKernel()
    trained = train_one(build_for_run("lenet", args), datasets, args, run, [live])
    averages = polyak_average(live.values, 0.6)
    steps = len(live.values) // 3
    best_epoch = int(np.argmin(trained.history["val_loss"]))
    at_best = averages[(best_epoch + 1) * steps - 1]
    best = keras.models.load_model(os.path.join(run.model_dir("lenet"), "best.keras"))
    kernel = best.get_layer("predictions").kernel.numpy()
    np.testing.assert_allclose(kernel, at_best, atol=1e-5)
    assert np.abs(kernel - live.values[(best_epoch + 1) * steps - 1]).max() > 1e-3  # not the live weights
    np.testing.assert_allclose(trained.model.get_layer("predictions").kernel.numpy(), at_best, atol=1e-5)
    # Validation judged the averaged weights.
    validation_loss = best.evaluate(datasets.validation, verbose=0)[0]
    assert validation_loss == pytest.approx(trained.history["val_loss"][best_epoch], rel=1e-4)


def test_ema_backup_holds_the_trained_weights_and_their_average(prepared):
    from utils.training.loop import compile_model

    args, datasets, run = prepared
    args = resolve_args({**args, "ema_momentum": 0.6})
    live = LiveKernel()
    with pytest.raises(KeyboardInterrupt):
        train_one(build_for_run("lenet", args), datasets, args, run, [live, Interrupt(after_epochs=2)])
    restored = build_for_run("lenet", args)
    compile_model(
        restored,
        training_settings(args),
        make_schedule(args["lr_schedule"], 0.02, total_steps=15, warmup_steps=5),
    )  # as fit's
    restored.optimizer.build(restored.trainable_variables)
    restored.load_weights(os.path.join(run.model_dir("lenet"), "backup", "train", "epoch-2.weights.h5"))
    kernel = restored.get_layer("predictions").kernel
    np.testing.assert_allclose(kernel.numpy(), live.values[-1], atol=1e-6)  # resumes from the live weights
    index = [v.path for v in restored.trainable_variables].index(kernel.path)
    average = restored.optimizer._model_variables_moving_average[index].numpy()
    np.testing.assert_allclose(average, polyak_average(live.values, 0.6)[-1], atol=1e-5)
    trained = train_one(
        build_for_run("lenet", args), datasets, args, open_run(args["output_dir"], args, args["run_name"])
    )
    assert trained.history["epoch"] == [0, 1, 2]


class StopAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = epoch == self.epoch


def test_ema_training_stopped_early_ends_on_the_average(prepared):
    args, datasets, run = prepared
    args = resolve_args({**args, "ema_momentum": 0.6, "checkpoint": False})
    live = LiveKernel()
    trained = train_one(build_for_run("lenet", args), datasets, args, run, [live, StopAfterEpoch(1)])
    assert trained.history["epoch"] == [0, 1]
    average = polyak_average(live.values, 0.6)[-1]
    np.testing.assert_allclose(trained.model.get_layer("predictions").kernel.numpy(), average, atol=1e-5)
