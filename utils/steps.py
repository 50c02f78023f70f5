"""The pipeline's steps, called in the same order by the notebook and train.py."""

import dataclasses
import os

import keras
import tensorflow as tf

from models import build_model
from models.pretrained.backbones import OFFLINE_BACKBONE, WEIGHTS_HOST, with_offline_fallback
from models.registry import is_pretrained_name, model_entry
from utils.analysis.summary import analyse_model
from utils.config.resolve import args_for_model
from utils.data.cifar10 import IMAGE_SHAPE, NUM_CLASSES, Cifar10
from utils.data.pipeline import make_augmenter, make_dataset, make_mixers
from utils.errors import RunFolderError
from utils.plots import history_figure, save_figure
from utils.runs.folders import read_run_args
from utils.runtime.distribution import strategy_scope, validation_batches
from utils.runtime.environment import choose_precision
from utils.training.callbacks import BEST_MODEL_FILE
from utils.training.loop import FINAL_MODEL_FILE, tested_model_file, train_model, trained_from_folder
from utils.training.optimizers import steps_per_epoch


@dataclasses.dataclass
class Datasets:
    """The tf.data pipelines of one run; `validation` is None without a validation split."""

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    steps_per_epoch: int
    augmenter: keras.Layer | None
    mixers: tuple  # CutMix / MixUp layers of the training pipeline
    data: Cifar10  # the arrays behind the pipelines (for fitted layers and cached features)


def make_datasets(data, args):
    """Training (shuffled, augmented), validation and test pipelines for `data`."""
    augmenter, mixers = make_augmenter(args, args["seed"]), make_mixers(args, args["seed"])
    batch = args["batch_size"]
    return Datasets(
        train=make_dataset(
            data.train,
            batch,
            training=True,
            augmenter=augmenter,
            mixers=mixers,
            seed=args["seed"],
            alternating_flip=args["augment_flip"] == "alternating",
        ),
        validation=None
        if data.validation is None
        else make_dataset(
            data.validation,
            batch,
            training=False,
            whole_batches=validation_batches(args, len(data.validation)),
        ),
        test=make_dataset(data.test, batch, training=False),
        steps_per_epoch=steps_per_epoch(len(data.train), batch),
        augmenter=augmenter,
        mixers=mixers,
        data=data,
    )


def apply_offline_fallback(args):
    """`args` with each ImageNet backbone that cannot be had swapped for OFFLINE_BACKBONE,
    when args["offline_fallback"] is on; says what it replaced."""
    if not args["offline_fallback"]:
        return args
    models, replaced = with_offline_fallback(args["models"], args["weights"])
    for name in replaced:
        print(
            f"{name} replaced by {OFFLINE_BACKBONE}: its ImageNet weights are not in Keras's cache "
            f"and {WEIGHTS_HOST} cannot be reached, while {OFFLINE_BACKBONE}'s install with the "
            "requirements (offline_fallback=false stops instead; weights=PATH uses a local file)."
        )
    return {**args, "models": models}


def model_options_for(name, args):
    """Builder options from args: weights, image sizes and feature_depths for pretrained models,
    then the model's own entry of args['model_options'], which wins."""
    options = {}
    if is_pretrained_name(name):
        options = {key: args[key] for key in ("weights", "image_size", "feature_depths", "image_size_start")}
    return {**options, **args["model_options"].get(name, {})}


def build_for_run(name, args):
    """Build registered model `name` with the options its args (`args_for_model`) give it, under
    the precision policy chosen for it (a model keeps the policy it was built with)."""
    keras.mixed_precision.set_global_policy(
        choose_precision(args["precision"], model_entry(name).cpu_float32)
    )
    with strategy_scope(args):
        return build_model(
            name, IMAGE_SHAPE, NUM_CLASSES, **model_options_for(name, args_for_model(args, name))
        )


def train_one(model, datasets, args, run, extra_callbacks=()):
    """Train a model built by `build_for_run` with its args (`args_for_model`) into its run
    sub-folder, resuming if interrupted (under args' distribution strategy, as it was built)."""
    with strategy_scope(args):
        model_args = args_for_model(args, model.name)
        return train_model(
            model.name, model, datasets, model_args, run.model_dir(model.name), extra_callbacks
        )


def analyse_trained(trained, data, run, args, test_probabilities=None):
    """The analysis of one trained model (utils.analysis.summary) into its run sub-folder."""
    return analyse_model(
        trained.model,
        trained.name,
        data,
        run.model_dir(trained.name),
        batch_size=args["batch_size"],
        seed=args["seed"],
        robustness_per_class=args["robustness_per_class"],
        test_probabilities=test_probabilities,
    )


def save_curves(trained, run):
    """Save and return the learning-curve figure of one trained model."""
    figure = history_figure(trained)
    save_figure(figure, os.path.join(run.model_dir(trained.name), "curves.png"))
    return figure


def load_run_models(run_path):
    """Every model trained in an earlier run folder, read back in the run's model order.

    Raises:
        RunFolderError: when the folder holds no run or no trained model.
    """
    trained = []
    for name in read_run_args(run_path)["models"]:
        model_dir = os.path.join(run_path, name)
        saved = tested_model_file(model_dir)
        if saved:
            trained.append(trained_from_folder(name, keras.models.load_model(saved), model_dir))
    if not trained:
        raise RunFolderError(f"{run_path} holds no trained model ({BEST_MODEL_FILE} or {FINAL_MODEL_FILE}).")
    return trained


def models_for_testing(trained_models, run_path, args):
    """The models to test: as trained, or after distributed training reloaded from the run folder
    outside the strategy, which would split the test set (and its last batch) across replicas."""
    if args["distribute"] == "none":
        return trained_models
    return load_run_models(run_path)
