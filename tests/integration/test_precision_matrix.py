"""Every optimizer choice trains under every precision policy through the real pipeline: one
interrupted epoch, a resumed one, the logged learning rate on schedule, and a best model that a
fresh process loads and that predicts the same there."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests import ROOT
from utils.config.resolve import resolve_args
from utils.runs.folders import open_run
from utils.steps import build_for_run, load_data, make_datasets, train_one
from utils.training.optimizers import make_schedule

OPTIMIZER_SETUPS = {
    "sgd": {"optimizer": "sgd"},
    "adam": {"optimizer": "adam"},
    "amsgrad": {"optimizer": "amsgrad"},
    "adamw": {"optimizer": "adamw"},
    "rmsprop": {"optimizer": "rmsprop"},
    "muon": {"optimizer": "muon"},
    "muon_sgd": {"optimizer": "muon_sgd"},
    "sgd+ema": {"optimizer": "sgd", "ema_momentum": 0.9},
    "sgd+lookahead": {"optimizer": "sgd", "lookahead_steps": 2},
}
PRECISIONS = ["float32", "mixed_bfloat16", "mixed_float16"]

pytestmark = pytest.mark.slow  # trains every optimizer under every precision

RELOAD = """
import sys
import numpy as np
import keras
import models  # registers the custom classes a saved model needs
model = keras.saving.load_model(sys.argv[1])
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0).astype("float32"))
print(",".join(sorted({layer.dtype_policy.name for layer in model.layers})))
"""


class InterruptAfter(keras.callbacks.Callback):
    """Raises KeyboardInterrupt as epoch `epochs` (from 0) begins, as a Ctrl-C would."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epochs:
            raise KeyboardInterrupt


class AppliedSteps(keras.callbacks.Callback):
    """Records, at each epoch's end, how many steps the scheduled optimizer has applied (the
    model that training ends with may be the restored best epoch's, with an earlier count)."""

    def __init__(self):
        super().__init__()
        self.counts = []

    def on_epoch_end(self, epoch, logs=None):
        self.counts.append(int(scheduled_part(self.model.optimizer).iterations.numpy()))


def scheduled_part(optimizer):
    """The optimizer whose learning rate args['learning_rate'] schedules, spelled out for the
    wrappers these cases meet (loss scaling under mixed_float16, muon_sgd's MultiOptimizer)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    if isinstance(optimizer, keras.optimizers.MultiOptimizer):
        optimizer = optimizer.optimizers[-1]
    return optimizer


def predict_in_fresh_process(path, images, tmp_path):
    np.save(tmp_path / "images.npy", images)
    done = subprocess.run(
        [sys.executable, "-c", RELOAD, path, str(tmp_path / "images.npy"), str(tmp_path / "out.npy")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(tmp_path / "out.npy"), done.stdout.split()[-1]


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("setup", list(OPTIMIZER_SETUPS))
def test_optimizer_trains_resumes_and_reloads_under_precision(setup, precision, tiny_args, tmp_path):
    args = resolve_args(
        {
            **tiny_args,
            **OPTIMIZER_SETUPS[setup],
            "precision": precision,
            "models": ["lenet"],
            "epochs": 2,
            "learning_rate": 0.01,
            "lr_schedule": "cosine",
            "warmup_epochs": 1,
        }
    )
    keras.utils.set_random_seed(0)
    data = load_data(args)
    datasets = make_datasets(data, args)
    run = open_run(args["output_dir"], args, args["run_name"])
    with pytest.raises(KeyboardInterrupt):
        train_one(build_for_run("lenet", args), datasets, args, run, [InterruptAfter(1)])

    resumed = open_run(args["output_dir"], args, args["run_name"])
    assert resumed.resumed and resumed.path == run.path
    counter = AppliedSteps()
    trained = train_one(build_for_run("lenet", args), datasets, args, resumed, [counter])
    assert trained.model.dtype_policy.name == precision
    assert trained.history["epoch"] == [0, 1]
    assert all(np.isfinite(trained.history["loss"]))

    steps = datasets.steps_per_epoch
    assert len(counter.counts) == 1  # only the interrupted epoch ran again
    applied = counter.counts[-1]
    if precision == "mixed_float16":  # steps whose scaled gradients overflow are skipped
        assert 2 * steps - 6 <= applied <= 2 * steps
    else:
        assert applied == 2 * steps  # the resumed epoch went on from the backup's step count
    schedule = make_schedule(args["lr_schedule"], args["learning_rate"], 2 * steps, steps)
    assert trained.history["learning_rate"][-1] == pytest.approx(float(schedule(applied)), rel=1e-5)

    images = data.test.images[:8]
    expected = trained.model.predict(images, verbose=0)
    best = os.path.join(resumed.model_dir("lenet"), "best.keras")
    reloaded, policy = predict_in_fresh_process(best, images, tmp_path)
    assert policy == ",".join(sorted({layer.dtype_policy.name for layer in trained.model.layers}))
    assert precision in policy.split(",")
    tolerance = 1e-5 if precision == "float32" else 1e-2
    np.testing.assert_allclose(reloaded, expected, atol=tolerance)


def test_fast_muon_preset_trains_fast_cnn_under_mixed_float16(tiny_args):
    """The issue's crash: fast_muon's MultiOptimizer inside the LossScaleOptimizer that Keras wraps
    around it under mixed_float16 (a GPU's automatic precision)."""
    args = resolve_args(
        {
            **tiny_args,
            "preset": "fast_muon",
            "precision": "mixed_float16",
            "models": ["fast_cnn"],
            "epochs": 2,
        }
    )
    keras.utils.set_random_seed(0)
    datasets = make_datasets(load_data(args), args)
    trained = train_one(
        build_for_run("fast_cnn", args), datasets, args, open_run(args["output_dir"], args, args["run_name"])
    )
    optimizer = trained.model.optimizer
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(optimizer.inner_optimizer, keras.optimizers.MultiOptimizer)
    assert trained.history["epoch"] == [0, 1] and all(np.isfinite(trained.history["loss"]))
    first, last = trained.history["learning_rate"]
    assert 0 <= last < first  # logged through both wrappers, decaying linearly
