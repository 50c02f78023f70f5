"""Weight-averaging callbacks: Lookahead and the optimizer's EMA."""

import os

import keras
import numpy as np
import pytest

from tests.utils.training.helpers import Interrupt
from utils.config.resolve import resolve_args
from utils.config.sections import section
from utils.runs.folders import open_run
from utils.steps import build_for_run, train_one, training_settings
from utils.training.optimizers import make_schedule


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


@pytest.mark.slow  # a training run of several phases or a subprocess
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
