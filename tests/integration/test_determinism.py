"""Same seed, same result: training on CPU repeats exactly, and a saved model predicts the same in a
fresh process."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests import ROOT
from utils.config.resolve import resolve_args
from utils.runs.folders import open_run
from utils.steps import build_for_run, load_data, make_datasets, start_session, train_one

pytestmark = pytest.mark.slow  # trains twice in subprocesses


def train_tiny(tiny_args, run_name):
    args = resolve_args({**tiny_args, "epochs": 2, "models": ["custom_cnn"], "run_name": run_name})
    start_session(args)
    datasets = make_datasets(load_data(args), args)
    trained = train_one(
        build_for_run("custom_cnn", args),
        datasets,
        args,
        open_run(args["output_dir"], args, args["run_name"]),
    )
    return trained, datasets


def test_same_seed_gives_identical_histories_and_weights(tiny_args):
    first, _ = train_tiny(tiny_args, "first")
    second, _ = train_tiny(tiny_args, "second")
    timing = {"epoch_seconds"}
    assert {k: v for k, v in first.history.items() if k not in timing} == {
        k: v for k, v in second.history.items() if k not in timing
    }
    for a, b in zip(first.model.weights, second.model.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_reloaded_model_predicts_identically_in_a_fresh_process(tiny_args, tmp_path):
    trained, datasets = train_tiny(tiny_args, "saved")
    images = datasets.data.test.images.astype(np.float32)
    path, inputs, outputs = tmp_path / "m.keras", tmp_path / "images.npy", tmp_path / "out.npy"
    trained.model.save(path)
    np.save(inputs, images)
    script = (
        "import sys, numpy as np, keras, models; "
        "m = keras.models.load_model(sys.argv[1]); "
        "np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), batch_size=16, verbose=0))"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(path), str(inputs), str(outputs)],
        check=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    np.testing.assert_array_equal(np.load(outputs), trained.model.predict(images, batch_size=16, verbose=0))
