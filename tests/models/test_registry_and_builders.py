import dataclasses

import keras
import numpy as np
import pytest

import models
from models import parts
from models.pretrained import backbones as pretrained
from models.pretrained.backbones import BACKBONES
from models.registry import register_model
from utils.config.resolve import resolve_args
from utils.errors import ConfigError, UnknownModelError, WeightsError
from utils.steps import apply_offline_fallback
from utils.training.loop import trainable_weight_count, unfreeze_top

SCRATCH_MODELS = [name for name in models.available_models() if name not in BACKBONES]
IMAGES = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")


def build(name, **options):
    """Randomly initialised, at the smallest image size a backbone accepts (at least 32)."""
    if name in BACKBONES:
        options.setdefault("weights", None)
        options.setdefault("image_size", max(32, BACKBONES[name].min_image_size))
    return models.build_model(name, **options)


@pytest.mark.parametrize("name", models.available_models())
def test_every_model_outputs_probabilities(name):
    model = build(name)
    probabilities = np.asarray(model(IMAGES, training=False))
    assert probabilities.shape == (2, 10)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.name == name


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_builds_at_a_second_image_size(name):
    size = 2 * max(32, BACKBONES[name].min_image_size)
    model = build(name, image_size=size)
    assert parts.backbone(model).input_shape == (None, size, size, 3)
    probabilities = np.asarray(model(IMAGES))
    assert probabilities.shape == (2, 10) and np.all(np.isfinite(probabilities))


@pytest.mark.parametrize("name", SCRATCH_MODELS)
def test_saved_model_reloads_with_same_predictions(name, tmp_path):
    model = build(name)
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(IMAGES, verbose=0), model.predict(IMAGES, verbose=0), rtol=1e-5
    )


def test_pretrained_model_reloads_with_its_preprocessing(tmp_path):
    model = build("vgg16")
    path = str(tmp_path / "vgg16.keras")
    model.save(path)
    np.testing.assert_allclose(
        keras.models.load_model(path).predict(IMAGES, verbose=0), model.predict(IMAGES, verbose=0), rtol=1e-5
    )


def test_standardization_is_inside_the_model():
    model = build("custom_cnn")
    standardized = np.asarray(model.get_layer("standardize")(np.full((1, 32, 32, 3), 125.3, "float32")))
    assert abs(standardized[0, 0, 0, 0]) < 1e-5  # the red channel mean maps to 0


def test_unknown_model_lists_registered_names():
    with pytest.raises(UnknownModelError, match="Unknown model 'vgg17'.*custom_cnn.*vgg16"):
        models.build_model("vgg17")


def test_unknown_option_lists_accepted_ones():
    with pytest.raises(ConfigError, match="no option.*'depth'.*accepts.*'width'"):
        models.build_model("custom_cnn", depth=3)


def test_options_change_the_model():
    narrow, wide = build("custom_cnn", width=16), build("custom_cnn", width=32)
    assert narrow.count_params() < wide.count_params()


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="registered already"):
        register_model("lenet")(lambda input_shape, num_classes: None)


def test_pretrained_base_is_frozen_and_head_trainable():
    model = build("vgg16")
    head = model.get_layer("predictions")
    assert not parts.backbone(model).trainable
    assert trainable_weight_count(model) == head.count_params()


def test_unfreeze_opens_exactly_the_top_layers_and_keeps_batchnorm_frozen():
    model = build("mobilenetv2")
    backbone = parts.backbone(model)
    opened = unfreeze_top(backbone, 3)
    trainable = [layer.name for layer in backbone.layers if layer.trainable and layer.weights]
    assert trainable == opened and len(opened) == 3
    assert all(
        not layer.trainable for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in backbone.layers)
    everything = unfreeze_top(backbone, "all")
    assert len(everything) > 3
    assert all(
        not layer.trainable for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)
    )


def test_imagenet_download_failure_explains_weights_file(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: network is unreachable")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(
        WeightsError, match="Could not download ImageNet weights for vgg16.*weights'\\] to its path"
    ):
        models.build_model("vgg16", weights="imagenet")


KERAS_APPLICATIONS = sorted(
    name for name, backbone in BACKBONES.items() if isinstance(backbone, pretrained.KerasApplication)
)


@pytest.mark.parametrize("name", KERAS_APPLICATIONS)
def test_imagenet_weights_are_requested_under_their_keras_file_name(monkeypatch, name):
    from keras.src.utils import file_utils

    requested = []

    def record(file_name, *args, **kwargs):
        requested.append(file_name)
        raise Exception("offline")

    monkeypatch.setattr(file_utils, "get_file", record)
    with pytest.raises(WeightsError):
        models.build_model(name, weights="imagenet", image_size=max(64, BACKBONES[name].min_image_size))
    assert len(requested) == 1
    assert requested[0].startswith(BACKBONES[name].weights_file_prefix)
    assert requested[0].endswith(("notop.h5", "no_top.h5"))


def test_inception_refuses_images_below_its_minimum():
    with pytest.raises(ConfigError, match="inceptionv3 needs images of at least 75x75 pixels \\(got 32\\)"):
        models.build_model("inceptionv3", weights=None, image_size=32)
    assert build("inceptionv3").input_shape == (None, 32, 32, 3)  # resized to 75 inside the model


def test_more_feature_depths_than_stages_are_refused():
    with pytest.raises(ConfigError, match="feature_depths=7, but backbone has only 6 resolution stages"):
        models.build_model("vgg16", weights=None, image_size=32, feature_depths=7)


def test_missing_weights_file_is_named():
    with pytest.raises(WeightsError, match="'/nowhere/w.h5' does not exist"):
        models.build_model("vgg16", weights="/nowhere/w.h5")


def test_weights_file_is_loaded(tmp_path):
    source = build("vgg16")
    path = str(tmp_path / "vgg16_notop.weights.h5")
    parts.backbone(source).save_weights(path)
    loaded = models.build_model("vgg16", weights=path)
    for expected, actual in zip(parts.backbone(source).weights, parts.backbone(loaded).weights):
        np.testing.assert_array_equal(np.asarray(expected), np.asarray(actual))


def test_wrong_weights_file_is_refused(tmp_path):
    path = str(tmp_path / "lenet.weights.h5")
    build("lenet").save_weights(path)
    with pytest.raises(WeightsError, match="does not fit vgg16"):
        models.build_model("vgg16", weights=path)


def _offline(monkeypatch, keras_home):
    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(pretrained.socket, "create_connection", refuse)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))


def test_offline_fallback_replaces_backbones_without_weights(monkeypatch, tmp_path):
    _offline(monkeypatch, tmp_path)
    models, replaced = pretrained.with_offline_fallback(
        ["custom_cnn", "vgg16", "resnet50", "efficientnet_lite0"], "imagenet"
    )
    assert models == ["custom_cnn", "efficientnet_lite0"]
    assert replaced == ["vgg16", "resnet50"]
    assert pretrained.with_offline_fallback(["vgg16"], None) == (["vgg16"], [])  # random weights need no file


def test_offline_fallback_picks_the_best_measured_offline_recipe_of_the_budget(monkeypatch, tmp_path):
    _offline(monkeypatch, tmp_path)
    assert pretrained.offline_backbones() == [
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
    ]

    def shifted(budget, points):
        recipe = pretrained.RECIPES["efficientnet_lite0"][budget]
        return dataclasses.replace(
            recipe, evidence=dataclasses.replace(recipe.evidence, accuracy=recipe.evidence.accuracy + points)
        )

    better, worse = shifted("long", 1), shifted("short", -1)
    recipes = {
        **pretrained.RECIPES,
        "efficientnet_lite1": {"short": worse},
        "efficientnet_lite2": {"long": better},
    }
    monkeypatch.setattr(pretrained, "RECIPES", recipes)
    assert pretrained.offline_backbone("short") == "efficientnet_lite0"  # lite2 has no short recipe
    assert pretrained.with_offline_fallback(["vgg16"], "imagenet", "long") == (
        ["efficientnet_lite2"],
        ["vgg16"],
    )
    monkeypatch.setattr(pretrained, "RECIPES", {"efficientnet_lite1": {"short": worse}})
    assert pretrained.offline_backbone("long") == pretrained.OFFLINE_BACKBONE  # none measured for it


def test_offline_fallback_keeps_a_backbone_whose_weights_keras_has_cached(monkeypatch, tmp_path):
    _offline(monkeypatch, tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"")
    assert pretrained.with_offline_fallback(["vgg16", "vgg19"], "imagenet") == (
        ["vgg16", "efficientnet_lite0"],
        ["vgg19"],
    )


def test_offline_fallback_is_applied_only_when_args_ask(monkeypatch, tmp_path, capsys):
    _offline(monkeypatch, tmp_path)
    args = resolve_args({"models": ["lenet", "vgg16"], "offline_fallback": False})
    assert apply_offline_fallback(args)["models"] == ["lenet", "vgg16"]
    fallback = apply_offline_fallback({**args, "offline_fallback": True})
    assert fallback["models"] == ["lenet", "efficientnet_lite0"]
    assert "vgg16 replaced by efficientnet_lite0: its ImageNet weights are not in" in capsys.readouterr().out
