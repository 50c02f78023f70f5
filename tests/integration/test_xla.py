"""Every registered model trains through the pipeline with its steps compiled by XLA
(`jit_compile=True`), and so does the progressive-resizing fine-tuning of the pretrained recipe."""

import keras
import numpy as np
import pytest

import models
from models.pretrained.backbones import BACKBONES
from utils.config.resolve import resolve_args
from utils.runs.folders import open_run
from utils.steps import build_for_run, load_data, make_datasets, train_one

pytestmark = pytest.mark.slow  # compiles every model with XLA


class CompiledWith(keras.callbacks.Callback):
    """Records the `jit_compile` that each fit of the model really runs with (Keras may drop it)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_begin(self, logs=None):
        self.seen.append(self.model.jit_compile)


def train_with_xla(name, tiny_args, **overrides):
    args = resolve_args(
        {**tiny_args, "models": [name], "epochs": 1, "jit_compile": True, "model_args": {}, **overrides}
    )
    keras.utils.set_random_seed(0)
    datasets = make_datasets(load_data(args), args)
    probe = CompiledWith()
    run = open_run(args["output_dir"], args, args["run_name"])
    trained = train_one(build_for_run(name, args), datasets, args, run, [probe])
    return trained, probe.seen


@pytest.mark.parametrize("name", models.available_models())
def test_every_model_trains_under_xla(name, tiny_args):
    overrides = {}
    if name in BACKBONES:
        size = max(32, BACKBONES[name].min_image_size)
        overrides = {"weights": None, "image_size": size, "fine_tune_layers": 0}
    trained, compiled = train_with_xla(name, tiny_args, **overrides)
    assert compiled == [True]
    assert np.all(np.isfinite(trained.history["loss"]))


def test_progressive_resizing_fine_tune_trains_under_xla(tiny_args):
    trained, compiled = train_with_xla(
        "efficientnet_lite0",
        tiny_args,
        weights=None,
        image_size_start=32,
        image_size=48,
        fine_tune_layers="all",
        fine_tune_epochs=2,
    )
    assert compiled == [True, True]  # the head phase, then fine-tuning after its recompile
    assert trained.history["image_size"][1:] == [32, 48]
    assert np.all(np.isfinite(trained.history["loss"]))
