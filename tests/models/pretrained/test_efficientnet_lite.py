"""EfficientNet-Lite0: the PyTorch -> Keras weight mapping and the offline ImageNet weights."""

import numpy as np
import pytest

import models
from models import parts
from models.pretrained import efficientnet_lite
from models.pretrained.torch_legacy import load_legacy_torch_file
from utils.errors import WeightsError


@pytest.fixture(scope="module")
def state():
    return load_legacy_torch_file(efficientnet_lite.package_weights_path())


@pytest.fixture(scope="module")
def backbone():
    return efficientnet_lite.build_efficientnet_lite0((32, 32, 3))


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
    from_path = models.build_model("efficientnet_lite0", weights=efficientnet_lite.package_weights_path())
    np.testing.assert_array_equal(
        np.asarray(parts.backbone(from_path).get_layer("head_conv").kernel), np.asarray(kernel)
    )


def test_a_corrupt_pth_file_is_a_weights_error(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="Cannot read EfficientNet-Lite0 weights.*broken.pth"):
        models.build_model("efficientnet_lite0", weights=str(path))
