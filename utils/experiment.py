"""The pipeline's steps, called in the same order by the notebook and train.py."""

import dataclasses
import os

import keras
import tensorflow as tf

from models import build_model
from models.pretrained import BACKBONES
from utils.data import IMAGE_SHAPE, NUM_CLASSES
from utils.pipeline import make_augmenter, make_dataset
from utils.plots import history_figure, save_figure
from utils.training import (
    BEST_MODEL_FILE,
    FINAL_MODEL_FILE,
    steps_per_epoch,
    train_model,
    trained_from_folder,
)


@dataclasses.dataclass
class Datasets:
    """The tf.data pipelines of one run; `validation` is None without a validation split."""

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    steps_per_epoch: int
    augmenter: keras.Layer | None


def make_datasets(data, args):
    """Training (shuffled, augmented), validation and test pipelines for `data`."""
    augmenter = make_augmenter(args, args["seed"])
    batch = args["batch_size"]
    return Datasets(
        train=make_dataset(data.train, batch, training=True, augmenter=augmenter, seed=args["seed"]),
        validation=data.validation and make_dataset(data.validation, batch, training=False),
        test=make_dataset(data.test, batch, training=False),
        steps_per_epoch=steps_per_epoch(len(data.train), batch),
        augmenter=augmenter,
    )


def model_options_for(name, args):
    """Builder options from args: weights and image_size for pretrained models, then
    the model's own entry of args['model_options'], which wins."""
    options = {"weights": args["weights"], "image_size": args["image_size"]} if name in BACKBONES else {}
    return {**options, **args["model_options"].get(name, {})}


def build_for_run(name, args):
    """Build registered model `name` with the options `args` give it."""
    return build_model(name, IMAGE_SHAPE, NUM_CLASSES, **model_options_for(name, args))


def train_one(model, datasets, args, run):
    """Train a model built by `build_for_run` into its run sub-folder, resuming if interrupted."""
    return train_model(model.name, model, datasets, args, run.model_dir(model.name))


def save_curves(trained, run):
    """Save and return the learning-curve figure of one trained model."""
    figure = history_figure(trained)
    save_figure(figure, os.path.join(run.model_dir(trained.name), "curves.png"))
    return figure


def load_trained(run_path, name):
    """A model trained in an earlier run, read back from its run folder."""
    model_dir = os.path.join(run_path, name)
    best = os.path.join(model_dir, BEST_MODEL_FILE)
    model = keras.models.load_model(
        best if os.path.isfile(best) else os.path.join(model_dir, FINAL_MODEL_FILE)
    )
    return trained_from_folder(name, model, model_dir)
