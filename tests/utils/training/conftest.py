"""A run prepared for training on the tiny data."""

import keras
import pytest

from utils.config.resolve import resolve_args
from utils.runs.folders import open_run
from utils.steps import load_data, make_datasets


@pytest.fixture
def prepared(tiny_args):
    """(args, datasets, run) for a 3-epoch lenet run on the tiny archive."""
    args = resolve_args({**tiny_args, "epochs": 3, "models": ["lenet"], "learning_rate": 0.02})
    keras.utils.set_random_seed(0)
    datasets = make_datasets(load_data(args), args)
    return args, datasets, open_run(args["output_dir"], args, args["run_name"])
