import keras
import numpy as np
import pytest

import models
from models.pretrained import BACKBONES, get_backbone
from models.registry import register_model
from utils.errors import ConfigError, UnknownModelError, WeightsError
from utils.training import trainable_weight_count, unfreeze_top

SCRATCH_MODELS = [name for name in models.available_models() if name not in BACKBONES]
IMAGES = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")


def build(name, **options):
    if name in BACKBONES:
        options.setdefault("weights", None)
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
    model = build(name, image_size=64)
    assert get_backbone(model).input_shape == (None, 64, 64, 3)
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
    assert not get_backbone(model).trainable
    assert trainable_weight_count(model) == head.count_params()


def test_unfreeze_opens_exactly_the_top_layers_and_keeps_batchnorm_frozen():
    model = build("mobilenetv2")
    backbone = get_backbone(model)
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


def test_missing_weights_file_is_named():
    with pytest.raises(WeightsError, match="'/nowhere/w.h5' does not exist"):
        models.build_model("vgg16", weights="/nowhere/w.h5")


def test_weights_file_is_loaded(tmp_path):
    source = build("vgg16")
    path = str(tmp_path / "vgg16_notop.weights.h5")
    get_backbone(source).save_weights(path)
    loaded = models.build_model("vgg16", weights=path)
    for expected, actual in zip(get_backbone(source).weights, get_backbone(loaded).weights):
        np.testing.assert_array_equal(np.asarray(expected), np.asarray(actual))


def test_wrong_weights_file_is_refused(tmp_path):
    path = str(tmp_path / "lenet.weights.h5")
    build("lenet").save_weights(path)
    with pytest.raises(WeightsError, match="does not fit vgg16"):
        models.build_model("vgg16", weights=path)
