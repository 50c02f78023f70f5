"""EfficientNet-Lite0/1/2: their layouts, the PyTorch -> Keras weight mapping, the offline ImageNet
weights and agreement with the reference PyTorch implementation."""

import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import models
from benchmarks.reference.crosscheck_lite_torch import FIXTURE_SIDE, fixture_inputs
from models import parts
from models.pretrained import efficientnet_lite
from models.pretrained.torch_legacy import load_legacy_torch_file
from tests import ROOT
from utils.errors import WeightsError

VARIANTS = sorted(efficientnet_lite.VARIANTS)
REFERENCE = pathlib.Path(__file__).with_name("lite_reference_features.npz")


@pytest.fixture(scope="module")
def state():
    return load_legacy_torch_file(efficientnet_lite.VARIANTS["lite0"].weights_path())


@pytest.fixture(scope="module")
def backbone():
    return efficientnet_lite.build_efficientnet_lite("lite0", (32, 32, 3))


@pytest.mark.parametrize(
    ("variant", "channels", "repeats"),
    [
        ("lite0", (16, 24, 40, 80, 112, 192, 320), (1, 2, 2, 3, 3, 4, 1)),
        ("lite1", (16, 24, 40, 80, 112, 192, 320), (1, 3, 3, 4, 4, 5, 1)),
        ("lite2", (16, 24, 48, 88, 120, 208, 352), (1, 3, 3, 4, 4, 5, 1)),
    ],
)
def test_variants_scale_the_published_stages(variant, channels, repeats):
    stages = efficientnet_lite.VARIANTS[variant].stages()
    assert tuple(stage[3] for stage in stages) == channels
    assert tuple(stage[4] for stage in stages) == repeats


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_uses_every_tensor_of_its_package_once(variant):
    state = load_legacy_torch_file(efficientnet_lite.VARIANTS[variant].weights_path())
    backbone = efficientnet_lite.build_efficientnet_lite(variant, (32, 32, 3))
    converted = efficientnet_lite.torch_to_keras(state, backbone)
    used = sum(len(weights) for weights in converted.values())
    unused = [key for key in state if efficientnet_lite.UNUSED_TENSORS.fullmatch(key)]
    assert used + len(unused) == len(state)
    assert sum(w.size for weights in converted.values() for w in weights) == backbone.count_params()


@pytest.mark.parametrize("variant", VARIANTS)
def test_features_match_the_reference_pytorch_model(variant):
    backbone = models.pretrained.backbones.BACKBONES[f"efficientnet_{variant}"].imagenet(
        (FIXTURE_SIDE, FIXTURE_SIDE, 3), variant
    )
    features = np.asarray(backbone(fixture_inputs(variant))).mean(axis=(1, 2))
    reference = np.load(REFERENCE)[variant]
    np.testing.assert_allclose(features, reference, rtol=1e-4, atol=1e-4)
    assert np.abs(reference).max() > 0.1  # not a trivially small output


def test_mapping_uses_every_tensor_once_and_fills_every_weight(state, backbone):
    converted = efficientnet_lite.torch_to_keras(state, backbone)
    used = sum(len(weights) for weights in converted.values())
    unused = [key for key in state if efficientnet_lite.UNUSED_TENSORS.fullmatch(key)]
    assert used + len(unused) == len(state)
    assert sorted(unused) == sorted(
        [k for k in state if k.endswith("num_batches_tracked")] + ["_fc.bias", "_fc.weight"]
    )
    assert set(converted) == {layer.name for layer in backbone.layers if layer.weights}
    assert sum(w.size for weights in converted.values() for w in weights) == backbone.count_params()


def test_kernels_are_transposed_to_keras_layout(state, backbone):
    converted = efficientnet_lite.torch_to_keras(state, backbone)
    np.testing.assert_array_equal(converted["stem_conv"][0], state["_conv_stem.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(
        converted["block3_dw_conv"][0][:, :, :, 0],
        state["_blocks.3._depthwise_conv.weight"][:, 0].transpose(1, 2, 0),
    )
    gamma, beta, mean, variance = converted["head_bn"]
    np.testing.assert_array_equal(variance, state["_bn1.running_var"])


def test_missing_and_left_over_tensors_are_errors(state, backbone):
    missing = {key: value for key, value in state.items() if not key.startswith("_blocks.7.")}
    with pytest.raises(WeightsError, match="No tensor for Keras layer 'block7_"):
        efficientnet_lite.torch_to_keras(missing, backbone)
    extra = {**state, "_blocks.99._bn0.weight": np.zeros(3, np.float32)}
    with pytest.raises(WeightsError, match="left over.*block99_expand_bn"):
        efficientnet_lite.torch_to_keras(extra, backbone)
    stray = {**state, "_classifier.weight": np.zeros(3, np.float32)}
    with pytest.raises(WeightsError, match="'_classifier.weight' maps to no"):
        efficientnet_lite.torch_to_keras(stray, backbone)
    wrong = {**state, "_conv_head.weight": np.zeros((1280, 320, 3, 3), np.float32)}
    with pytest.raises(WeightsError, match="'head_conv' expects shapes"):
        efficientnet_lite.torch_to_keras(wrong, backbone)


def test_imagenet_weights_load_offline_and_a_pth_path_too(state, tmp_path):
    model = models.build_model("efficientnet_lite0", weights="imagenet")
    kernel = parts.backbone(model).get_layer("head_conv").kernel
    np.testing.assert_array_equal(np.asarray(kernel), state["_conv_head.weight"].transpose(2, 3, 1, 0))
    from_path = models.build_model(
        "efficientnet_lite0", weights=efficientnet_lite.VARIANTS["lite0"].weights_path()
    )
    np.testing.assert_array_equal(
        np.asarray(parts.backbone(from_path).get_layer("head_conv").kernel), np.asarray(kernel)
    )


def test_a_corrupt_pth_file_is_a_weights_error(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="Cannot read EfficientNet-Lite weights.*broken.pth"):
        models.build_model("efficientnet_lite0", weights=str(path))


RELOAD = """
import sys
import keras
import numpy as np
import models  # registers the custom layers
model = keras.models.load_model(sys.argv[1])
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
"""


@pytest.mark.parametrize("variant", ["lite1", "lite2"])
def test_larger_variants_save_and_reload_in_a_fresh_process(variant, tmp_path):
    model = models.build_model(f"efficientnet_{variant}", weights="imagenet", image_size=64)
    images = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "images.npy", images)
    done = subprocess.run(
        [sys.executable, "-c", RELOAD, str(path), str(tmp_path / "images.npy"), str(tmp_path / "out.npy")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model.predict(images, verbose=0), atol=1e-5)
    keras.backend.clear_session()
