import keras
import numpy as np
import pytest

from models import adapt_to_images, build_model
from models.parts import last_feature_map
from models.pretrained.backbones import resizable_side
from utils.analysis.gradcam import gradcam

IMAGES = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)


def top_left_only_model():
    """Only the top-left 12x12 pixels reach the classifier: everything else is masked out."""
    keras.utils.set_random_seed(1)
    mask = np.zeros((1, 32, 32, 1), np.float32)
    mask[:, :12, :12] = 1.0
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda images: images / 255.0 * mask)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_gradcam_peaks_in_the_only_region_that_matters():
    model = top_left_only_model()
    assert last_feature_map(model).name == "features"
    heat = gradcam(model, IMAGES)
    assert heat.shape == (4, 32, 32) and heat.min() >= 0 and heat.max() <= 1
    for image_heat in heat:
        row, column = np.unravel_index(image_heat.argmax(), image_heat.shape)
        assert row < 14 and column < 14  # 12 pixels plus the bilinear upsampling's reach
        assert image_heat[:12, :12].mean() > 10 * image_heat[16:, 16:].mean()


def test_gradcam_of_a_chosen_class():
    model = top_left_only_model()
    predicted = model.predict(IMAGES, verbose=0).argmax(axis=1)
    np.testing.assert_allclose(gradcam(model, IMAGES, classes=predicted), gradcam(model, IMAGES), atol=1e-6)


@pytest.mark.parametrize(
    "name, options, layer, shape",
    [
        ("custom_cnn", {}, "stage3_res_add", (4, 4)),
        ("fast_cnn", {}, "block3_gelu2", (3, 3)),
        ("lenet", {}, "block5_bn", (2, 2)),  # its 1x1 maps after the last pooling are skipped
        ("efficientnet_lite0", {"weights": None, "image_size": 64}, "backbone", (2, 2)),
        # at 32 px the backbone's output is 1x1: the search goes on inside it
        ("vgg16", {"weights": None, "image_size": 32}, "backbone/block5_conv3", (2, 2)),
        ("efficientnet_lite0", {"weights": None, "image_size": 32}, "backbone/block11_expand_relu6", (2, 2)),
        # a multi-output backbone (pooled maps of several stages): inside it, or its deepest map
        (
            "efficientnet_lite0",
            {"weights": None, "image_size": 32, "feature_depths": 3},
            "backbone/block11_expand_relu6",
            (2, 2),
        ),
        ("vgg16", {"weights": None, "image_size": 64, "feature_depths": 2}, "backbone", (2, 2)),
    ],
)
def test_feature_map_found_in_every_family_and_after_reloading(name, options, layer, shape, tmp_path):
    model = build_model(name, **options)
    adapt_to_images(model, IMAGES.astype(np.uint8))  # fast_cnn's whitening layer, as training does
    found = last_feature_map(model)
    assert found.name == layer and found.shape == shape
    path = str(tmp_path / "best.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert last_feature_map(reloaded).name == layer
    heat = gradcam(reloaded, IMAGES[:2])
    np.testing.assert_allclose(heat, gradcam(model, IMAGES[:2]), atol=1e-4)
    assert heat.shape == (2, 32, 32) and heat.min() >= 0 and heat.max() <= 1


def test_gradcam_inside_a_frozen_backbone_depends_on_the_image():
    model = build_model("vgg16", weights=None, image_size=32)
    model.get_layer("backbone").trainable = False
    heat = gradcam(model, IMAGES[:2])
    assert heat.std() > 0.05 and not np.allclose(heat[0], heat[1])


def test_gradcam_of_a_model_resizing_to_less_than_its_built_side():
    """Progressive resizing: the saved model may resize to a smaller side than the backbone's."""
    model = build_model("efficientnet_lite0", weights=None, image_size=96, image_size_start=64)
    assert resizable_side(model).side.numpy() == 64
    heat = gradcam(model, IMAGES[:2])
    assert heat.shape == (2, 32, 32) and heat.min() >= 0 and heat.max() <= 1 and heat.std() > 0


def test_model_without_feature_map_is_refused():
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    with pytest.raises(ValueError, match="no layer with a feature map larger than 1x1"):
        last_feature_map(model)
