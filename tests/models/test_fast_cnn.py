import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from models.fast_cnn import (
    PatchWhitening,
    ScaledShift,
    ShiftedBatchNorm,
    extract_patches,
    gelu_via_erf,
    split_for_float16,
    whitening_filters,
)


def correlated_images(count=200, seed=0):
    """Images with strongly correlated neighbouring pixels and channels, like photos."""
    rng = np.random.default_rng(seed)
    smooth = rng.normal(size=(count, 8, 8, 1)).repeat(4, axis=1).repeat(4, axis=2)
    noise = rng.normal(scale=0.3, size=(count, 32, 32, 3))
    return np.clip(128 + 50 * (smooth + noise), 0, 255).astype(np.float32)


def test_patches_follow_the_kernel_layout():
    images = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    patches = extract_patches(images, 2)
    assert patches.shape == (2 * 3 * 3, 12)
    np.testing.assert_array_equal(patches[0], images[0, :2, :2, :].reshape(-1))


def test_whitening_gives_identity_covariance_on_fitted_patches():
    images = correlated_images()
    layer = PatchWhitening(epsilon=0.0)
    layer.build((None, 32, 32, 3))
    layer.adapt(images)
    outputs = np.asarray(layer(images)).reshape(-1, 24)
    positive = outputs[:, :12]
    np.testing.assert_allclose(positive.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(np.cov(positive, rowvar=False), np.eye(12), atol=2e-3)
    np.testing.assert_allclose(outputs[:, 12:], -positive, atol=1e-4)
    raw = extract_patches(images, 2)
    assert np.abs(np.corrcoef(raw, rowvar=False) - np.eye(12)).max() > 0.5  # inputs were correlated


def test_whitening_computes_in_float32_under_a_bfloat16_policy():
    images = correlated_images()
    exact = PatchWhitening(epsilon=0.0)
    exact.build(images.shape)
    exact.adapt(images)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # the autouse fixture resets it
    layer = PatchWhitening(epsilon=0.0)
    layer.build(images.shape)
    layer.set_weights(exact.get_weights())
    outputs = layer(images)
    assert outputs.dtype == "float32"
    assert keras.layers.Activation("linear")(outputs).dtype == "bfloat16"  # the next layers are not
    np.testing.assert_allclose(np.asarray(outputs), np.asarray(exact(images)), atol=1e-4)


def test_whitening_survives_its_weights_stored_in_float16():
    """A float16 export stores each constant in float16: the split kernel's two parts keep the
    whitened output to float32 accuracy, where the kernel rounded whole moves it by up to ~1e-2."""
    images = correlated_images()
    layer = PatchWhitening(epsilon=0.0)
    layer.build(images.shape)
    layer.adapt(images)
    kernel = keras.ops.convert_to_tensor(layer.kernel)
    high, low = split_for_float16(kernel)
    np.testing.assert_array_equal(np.asarray(high + low), np.asarray(kernel))
    np.testing.assert_array_equal(np.asarray(high), np.asarray(high).astype(np.float16).astype(np.float32))

    def conv(*parts):
        stored = [np.asarray(part).astype(np.float16).astype(np.float32) for part in parts]
        return sum(np.asarray(keras.ops.conv(images, part, padding="valid")) for part in stored)

    exact = np.asarray(keras.ops.conv(images, kernel, padding="valid"))
    split_error = np.abs(conv(high, low) - exact).max()
    whole_error = np.abs(conv(kernel) - exact).max()
    assert split_error < 1e-3 < whole_error and split_error * 20 < whole_error
    np.testing.assert_allclose(np.asarray(layer(images)) - np.asarray(layer.bias), exact, atol=1e-3)


def test_epsilon_damps_the_weak_components():
    patches = extract_patches(correlated_images(), 2)
    exact, _ = whitening_filters(patches, 0.0)
    damped, _ = whitening_filters(patches, 10.0)
    assert np.all(np.linalg.norm(damped, axis=0) < np.linalg.norm(exact, axis=0))


def test_fast_cnn_fits_whitening_and_keeps_it_frozen(tmp_path):
    model = models.build_model("fast_cnn")
    whiten = model.get_layer("whiten")
    assert not whiten.trainable and not whiten.trainable_weights
    models.adapt_to_images(model, correlated_images())
    assert np.abs(np.asarray(whiten.kernel)).sum() > 0
    path = str(tmp_path / "fast.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_array_equal(np.asarray(reloaded.get_layer("whiten").kernel), np.asarray(whiten.kernel))
    images = correlated_images(4)
    np.testing.assert_allclose(
        reloaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5
    )


def test_logit_scale_softens_the_output():
    images = correlated_images(8)
    keras.utils.set_random_seed(0)
    sharp = models.build_model("fast_cnn", logit_scale=1.0)
    keras.utils.set_random_seed(0)
    soft = models.build_model("fast_cnn", logit_scale=0.01)
    for model in (sharp, soft):
        models.adapt_to_images(model, correlated_images())
    assert np.asarray(soft(images)).max() < np.asarray(sharp(images)).max()
    np.testing.assert_allclose(np.asarray(soft(images)), 0.1, atol=0.05)


@pytest.mark.parametrize("epsilon", [0.0, 2.0])
def test_whitening_filters_are_eigen_directions(epsilon):
    patches = extract_patches(correlated_images(50), 2)
    filters, bias = whitening_filters(patches, epsilon)
    assert filters.shape == (12, 24) and bias.shape == (24,)
    np.testing.assert_allclose(patches.mean(axis=0) @ filters + bias, 0, atol=1e-6)


def test_block_convolutions_start_as_identity():
    model = models.build_model("fast_cnn", widths=(16, 32, 32))
    square = model.get_layer("block1_conv2")  # 16 -> 16 channels: a full identity
    inputs = np.random.default_rng(0).normal(size=(2, 8, 8, 16)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(square(inputs)), inputs, atol=1e-6)
    widening = model.get_layer("block2_conv1")  # 16 -> 32: first 16 pass through, the rest random
    outputs = np.asarray(widening(inputs))
    np.testing.assert_allclose(outputs[..., :16], inputs, atol=1e-6)
    assert np.abs(outputs[..., 16:]).mean() > 0.1


def test_scaled_shift_learns_multiplier_squared_faster():
    layer = ScaledShift(multiplier=8.0)
    layer.build((None, 3))
    optimizer = keras.optimizers.SGD(learning_rate=0.01)
    inputs = np.zeros((4, 3), dtype=np.float32)
    with tf.GradientTape() as tape:
        loss = keras.ops.sum(layer(inputs))  # d loss / d shift = 4 per channel
    optimizer.apply_gradients(zip(tape.gradient(loss, layer.trainable_weights), layer.trainable_weights))
    np.testing.assert_allclose(np.asarray(layer(inputs))[0], -64 * 0.01 * 4, rtol=1e-5)


def _shifted_batch_norm(channels, shift, dtype=None):
    layer = ShiftedBatchNorm(momentum=0.6, epsilon=1e-5, multiplier=8.0, dtype=dtype)
    layer.build((None, 4, 4, channels))
    layer.shift.assign(shift)
    return layer


def test_shifted_batch_norm_matches_keras_batch_norm_plus_shift():
    images = np.random.default_rng(0).normal(2.0, 3.0, size=(8, 4, 4, 5)).astype(np.float32)
    shift = np.arange(5, dtype=np.float32) / 10
    fused = _shifted_batch_norm(5, shift)
    batch_norm = keras.layers.BatchNormalization(momentum=0.6, epsilon=1e-5, center=False, scale=False)
    composed = ScaledShift(multiplier=8.0)
    composed.build(images.shape)
    composed.shift.assign(shift)

    expected = np.asarray(composed(batch_norm(images, training=True)))
    np.testing.assert_allclose(np.asarray(fused(images, training=True)), expected, atol=1e-5)
    np.testing.assert_allclose(np.asarray(fused.moving_mean), np.asarray(batch_norm.moving_mean), rtol=1e-6)
    # the moving variance takes in the batch's unbiased variance, as PyTorch's does
    moving_variance = 0.6 + 0.4 * images.reshape(-1, 5).var(axis=0, ddof=1)
    np.testing.assert_allclose(np.asarray(fused.moving_variance), moving_variance, rtol=1e-5)

    inference = (images - np.asarray(fused.moving_mean)) / np.sqrt(moving_variance + 1e-5) + 8.0 * shift
    np.testing.assert_allclose(np.asarray(fused(images, training=False)), inference, atol=1e-5)


def test_shifted_batch_norm_shift_learns_multiplier_squared_faster():
    layer = _shifted_batch_norm(3, np.zeros(3, dtype=np.float32))
    optimizer = keras.optimizers.SGD(learning_rate=0.01)
    inputs = np.zeros((4, 2, 2, 3), dtype=np.float32)  # normalised: all zeros, so outputs = 8 * shift
    with tf.GradientTape() as tape:
        loss = keras.ops.sum(layer(inputs, training=True))  # d loss / d shift = 8 * 16 per channel
    assert [weight.name for weight in layer.trainable_weights] == ["shift"]
    optimizer.apply_gradients(zip(tape.gradient(loss, layer.trainable_weights), layer.trainable_weights))
    np.testing.assert_allclose(np.asarray(layer(inputs, training=True))[0, 0, 0], -64 * 0.01 * 16, rtol=1e-5)


def test_shifted_batch_norm_computes_in_bfloat16_with_float32_statistics():
    images = np.random.default_rng(1).normal(size=(4, 4, 4, 3)).astype(np.float32)
    exact = np.asarray(_shifted_batch_norm(3, np.full(3, 0.1, dtype=np.float32))(images, training=True))
    layer = _shifted_batch_norm(3, np.full(3, 0.1, dtype=np.float32), dtype="mixed_bfloat16")
    outputs = layer(images, training=True)
    assert outputs.dtype == tf.bfloat16 and layer.moving_mean.dtype == "float32"
    np.testing.assert_allclose(np.asarray(tf.cast(outputs, tf.float32)), exact, atol=0.05)


def test_gelu_via_erf_is_keras_exact_gelu():
    values = np.linspace(-6, 6, 241).astype(np.float32)
    exact = keras.activations.gelu(values, approximate=False)
    np.testing.assert_allclose(np.asarray(gelu_via_erf(values)), np.asarray(exact), atol=1e-6)
