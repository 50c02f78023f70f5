"""Progressive resizing: a pretrained model whose image side rises while it is fine-tuned."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import models
from models.pretrained.backbones import resizable_side
from tests import ROOT
from utils.config.resolve import resolve_args
from utils.errors import ConfigError
from utils.runs.folders import open_run, read_history
from utils.steps import build_for_run, load_data, make_datasets, train_one
from utils.training.callbacks import scheduled_sides

IMAGES = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3)).astype(np.float32)


@pytest.mark.parametrize(
    "start, end, epochs, sides",
    [
        (64, 128, 5, [64, 80, 96, 112, 128]),
        (48, 100, 3, [48, 72, 100]),
        (64, 96, 2, [64, 96]),
        (64, 96, 1, [96]),
    ],
)
def test_sides_rise_linearly_in_multiples_of_8_from_start_to_end(start, end, epochs, sides):
    assert scheduled_sides(start, end, epochs) == sides


def resized_shape(model):
    resize = keras.Model(model.inputs, model.get_layer("resize").output)
    return resize.predict(IMAGES, verbose=0).shape[1:3]


def test_the_side_is_a_weight_the_compiled_graph_follows():
    model = models.build_model("efficientnet_lite0", weights=None, image_size=64, image_size_start=40)
    layer = resizable_side(model)
    assert resized_shape(model) == (40, 40)
    layer.side.assign(56)
    assert resized_shape(model) == (56, 56)
    assert model.predict(IMAGES, verbose=0).shape == (3, 10)
    assert resizable_side(models.build_model("efficientnet_lite0", weights=None, image_size=64)) is None


def test_a_start_outside_the_input_and_final_sides_is_refused():
    with pytest.raises(ConfigError, match="image_size_start = 80 is not accepted"):
        models.build_model("vgg16", weights=None, image_size=64, image_size_start=80)


@pytest.mark.parametrize(
    "overrides",
    [
        {"image_size": 64, "image_size_start": 64},
        {"image_size": 96, "image_size_start": 64, "fine_tune_epochs": 0},
    ],
)
def test_args_without_room_to_grow_are_refused(overrides):
    with pytest.raises(ConfigError, match="image_size_start"):
        resolve_args(overrides)


@pytest.mark.slow  # a training run of several phases or a subprocess
def test_fine_tuning_raises_the_side_and_the_saved_model_takes_32_pixel_images(tiny_args, tmp_path):
    args = resolve_args(
        {
            **tiny_args,
            "models": ["efficientnet_lite0"],
            "weights": None,
            "image_size": 48,
            "image_size_start": 32,
            "epochs": 1,
            "fine_tune_epochs": 3,
            "fine_tune_layers": "all",
            "checkpoint": False,
            "feature_cache_dir": str(tmp_path / "cache"),
        }
    )
    datasets = make_datasets(load_data(args), args)
    model = build_for_run("efficientnet_lite0", args)
    run = open_run(args["output_dir"], args, args["run_name"])
    trained = train_one(model, datasets, args, run)
    assert trained.history["image_size"][1:] == [32, 40, 48]  # the head epoch has no schedule
    assert resized_shape(model) == (48, 48)
    path = os.path.join(run.model_dir("efficientnet_lite0"), "final.keras")
    in_process = model.predict(IMAGES, verbose=0)
    code = (
        "import sys, keras, numpy as np, models; "
        "m = keras.models.load_model(sys.argv[1]); "
        "print(m.get_layer('resize').side.numpy()); "
        "np.save(sys.argv[2], m.predict(np.load(sys.argv[3]), verbose=0))"
    )
    np.save(tmp_path / "images.npy", IMAGES)
    done = subprocess.run(
        [sys.executable, "-c", code, path, str(tmp_path / "out.npy"), str(tmp_path / "images.npy")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "48"
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), in_process, rtol=1e-5, atol=1e-6)
    assert read_history(os.path.join(run.model_dir("efficientnet_lite0"), "history.csv"))["epoch"] == [
        0,
        1,
        2,
        3,
    ]
