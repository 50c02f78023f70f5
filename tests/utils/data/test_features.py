"""Cached backbone features and the fast frozen phase that trains the head on them."""

import os

import keras
import numpy as np
import pytest

import models
from models import parts
from models.parts import features_model, head_model
from utils.config.resolve import resolve_args
from utils.data.features import cache_key, cached_features
from utils.runs.folders import open_run, read_json
from utils.steps import build_for_run, load_data, make_datasets, train_one

IMAGES = np.random.default_rng(0).integers(0, 256, size=(6, 32, 32, 3)).astype(np.uint8)
NO_AUGMENTATION = {"augment_flip": False, "augment_translate": 0}


def lite(image_size=32, seed=0, feature_depths=1, head_units=0):
    keras.utils.set_random_seed(seed)
    return models.build_model(
        "efficientnet_lite0",
        weights=None,
        image_size=image_size,
        feature_depths=feature_depths,
        head_units=head_units,
    )


def test_features_are_cached_and_reused(tmp_path):
    model = lite()
    first, from_cache = cached_features(model, IMAGES, str(tmp_path), batch_size=4)
    assert not from_cache and first.shape == (6, 1280) and first.dtype == np.float32
    # Random weights give features near 1e-13, where other batch sizes round differently.
    expected = features_model(model).predict(IMAGES.astype("float32"), verbose=0)
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-4 * np.abs(expected).max())
    again, from_cache = cached_features(model, IMAGES, str(tmp_path), batch_size=4)
    assert from_cache
    np.testing.assert_array_equal(again, first)
    assert len(os.listdir(tmp_path)) == 1


def test_cache_key_changes_with_weights_image_size_and_images():
    model = lite()
    key = cache_key(model, IMAGES)
    assert cache_key(lite(), IMAGES) == key  # same seed, same weights
    assert cache_key(lite(seed=1), IMAGES) != key
    assert cache_key(lite(image_size=64), IMAGES) != key
    assert cache_key(model, IMAGES[::-1]) != key
    assert cache_key(lite(feature_depths=2), IMAGES) != key  # same weights, more maps pooled
    parts.backbone(model).get_layer("head_conv").kernel.assign(np.zeros((1, 1, 320, 1280), "float32"))
    assert cache_key(model, IMAGES) != key


@pytest.mark.parametrize("head_units", [0, 16])
def test_head_model_shares_the_head_weights(head_units):
    model = lite(head_units=head_units)
    head = head_model(model)
    features = features_model(model)(IMAGES.astype("float32"))
    np.testing.assert_allclose(
        np.asarray(head(features)), np.asarray(model(IMAGES.astype("float32"))), rtol=1e-5
    )
    assert {id(w) for w in head.weights} <= {id(w) for w in model.weights}
    assert len(head.trainable_weights) == (4 if head_units else 2)  # a hidden layer's kernel and bias


def test_features_of_several_depths_are_the_pooled_stage_maps_concatenated():
    model = lite(feature_depths=3)
    maps = keras.Model(model.inputs, parts.backbone(model)(model.get_layer("preprocess").output))
    deepest, middle, shallow = maps.predict(IMAGES.astype("float32"), verbose=0)
    assert [m.shape[1:] for m in (deepest, middle, shallow)] == [(1, 1, 1280), (2, 2, 672), (4, 4, 240)]
    features = features_model(model).predict(IMAGES.astype("float32"), verbose=0)
    expected = np.concatenate([m.mean(axis=(1, 2)) for m in (deepest, middle, shallow)], axis=1)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("feature_depths", [1, 3])
def test_frozen_phase_on_cached_features_trains_only_the_head(tiny_args, tmp_path, feature_depths):
    args = resolve_args(
        {
            **tiny_args,
            **NO_AUGMENTATION,
            "models": ["efficientnet_lite0"],
            "weights": "imagenet",  # random Lite0 features vanish (about 1e-13): nothing to learn from
            "epochs": 3,
            "fine_tune_epochs": 0,
            "feature_cache_dir": str(tmp_path / "cache"),
            "optimizer": "adam",
            "learning_rate": 0.01,
            "lr_schedule": "constant",
            "feature_depths": feature_depths,
        }
    )
    datasets = make_datasets(load_data(args), args)
    model = build_for_run("efficientnet_lite0", args)
    assert model.get_layer("pool").output.shape[1] == {1: 1280, 3: 2192}[feature_depths]
    backbone_before = [np.array(w) for w in parts.backbone(model).weights]
    head_before = np.array(model.get_layer("predictions").kernel)
    run = open_run(args["output_dir"], args, args["run_name"])
    trained = train_one(model, datasets, args, run)
    state = read_json(os.path.join(run.model_dir("efficientnet_lite0"), "state.json"))
    assert state["phases"]["train"]["feature_seconds"] > 0
    assert trained.train_seconds > state["phases"]["train"]["feature_seconds"]
    assert trained.history["epoch"] == [0, 1, 2] and trained.fine_tune_start_epoch is None
    assert trained.history["loss"][2] < trained.history["loss"][0]
    assert not np.array_equal(np.array(model.get_layer("predictions").kernel), head_before)
    for before, after in zip(backbone_before, parts.backbone(model).weights):
        np.testing.assert_array_equal(np.array(after), before)
    assert len(os.listdir(tmp_path / "cache")) == 2  # train and validation features
    assert os.path.isfile(os.path.join(run.model_dir("efficientnet_lite0"), "best.keras"))
