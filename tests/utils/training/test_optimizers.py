"""Optimizers and schedules: decay, rate factors, AMSGrad, Muon and its split."""

import keras
import numpy as np
import pytest

import models
from models import parts
from utils.config.resolve import resolve_args
from utils.config.sections import section
from utils.steps import training_settings
from utils.training.optimizers import make_schedule


def test_warmup_cosine_schedule_shape():
    schedule = make_schedule("warmup_cosine", 0.1, total_steps=100, warmup_steps=10)
    rates = [float(schedule(step)) for step in range(101)]
    assert rates[0] == pytest.approx(0.0)
    assert rates[10] == pytest.approx(0.1)
    assert all(a <= b for a, b in zip(rates[:10], rates[1:11]))  # rising warmup
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))  # decaying afterwards
    assert rates[100] == pytest.approx(0.0, abs=1e-6)


def test_constant_and_cosine_schedules():
    assert make_schedule("constant", 0.1, 100, 10) == 0.1
    cosine = make_schedule("cosine", 0.1, 100, 10)
    assert float(cosine(0)) == pytest.approx(0.1)
    assert float(cosine(50)) == pytest.approx(0.05, rel=1e-3)


@pytest.mark.parametrize("name", ["sgd", "adam", "amsgrad", "adamw", "rmsprop", "muon"])
def test_weight_decay_shrinks_kernels_but_not_batchnorm(name):
    from utils.config.sections import section
    from utils.training.optimizers import make_optimizer

    optimizer = make_optimizer(
        section(resolve_args({"optimizer": name, "weight_decay": 0.5}), "optimizer"), 0.1
    )
    kernel, gamma = keras.Variable(1.0, name="kernel"), keras.Variable(1.0, name="gamma")
    optimizer.apply_gradients([(keras.ops.zeros(()), kernel), (keras.ops.zeros(()), gamma)])
    assert float(kernel.numpy()) == pytest.approx(1 - 0.1 * 0.5)
    assert float(gamma.numpy()) == 1.0
    without = make_optimizer(section(resolve_args({"optimizer": name, "weight_decay": 0}), "optimizer"), 0.1)
    plain = keras.Variable(1.0, name="kernel")
    without.apply_gradients([(keras.ops.zeros(()), plain)])
    assert float(plain.numpy()) == 1.0


def test_warmup_linear_schedule_shape():
    schedule = make_schedule(
        resolve_args({"lr_schedule": "warmup_linear"}), 0.4, total_steps=100, warmup_steps=20
    )
    rates = [float(schedule(step)) for step in range(101)]
    assert rates[0] == 0.0 and rates[10] == pytest.approx(0.2) and rates[20] == pytest.approx(0.4)
    assert rates[60] == pytest.approx(0.2) and rates[100] == 0.0
    config = schedule.get_config()
    assert type(schedule).from_config(config).get_config() == config


@pytest.mark.parametrize("name", ["sgd", "adam", "amsgrad", "adamw", "rmsprop", "muon"])
def test_rate_factors_scale_single_variables_steps(name):
    from utils.training.optimizers import make_optimizer

    gentle, normal = keras.Variable(1.0, name="gentle"), keras.Variable(1.0, name="normal")
    args = resolve_args({"optimizer": name, "weight_decay": 0})
    optimizer = make_optimizer(section(args, "optimizer"), 0.1, rate_factors={gentle.path: 0.25})
    gradient = keras.ops.ones(())
    optimizer.apply_gradients([(gradient, gentle), (gradient, normal)])
    step_gentle, step_normal = 1 - float(gentle.numpy()), 1 - float(normal.numpy())
    assert step_normal > 0 and step_gentle == pytest.approx(0.25 * step_normal, rel=1e-5)


def test_fine_tune_rate_factors_cover_exactly_the_unfrozen_backbone():
    from utils.training.loop import fine_tune_rate_factors, unfreeze_top

    args = resolve_args({"fine_tune_backbone_lr_factor": 0.1})
    model = models.build_model("mobilenetv2", weights=None)
    unfreeze_top(parts.backbone(model), 3)
    factors = fine_tune_rate_factors(model, args["fine_tune_backbone_lr_factor"])
    backbone_paths = {w.path for w in parts.backbone(model).trainable_weights}
    assert set(factors) == backbone_paths and len(backbone_paths) == 3
    assert set(factors.values()) == {0.1}
    head_paths = {w.path for w in model.get_layer("predictions").weights}
    assert not head_paths & set(factors)


def test_amsgrad_is_adam_with_the_running_maximum():
    from utils.training.optimizers import make_optimizer

    amsgrad = make_optimizer(section(resolve_args({"optimizer": "amsgrad"}), "optimizer"), 0.1)
    adam = make_optimizer(section(resolve_args({"optimizer": "adam"}), "optimizer"), 0.1)
    assert isinstance(amsgrad, keras.optimizers.Adam) and amsgrad.amsgrad and not adam.amsgrad


def test_muon_orthogonalises_convolution_kernels_and_leaves_the_classifier_to_adamw():
    from utils.training.optimizers import make_optimizer

    rng = np.random.default_rng(0)
    kernel = keras.Variable(np.zeros((3, 3, 4, 8), "float32"), name="kernel")
    classifier = keras.Variable(np.zeros((8, 10), "float32"), name="classifier")
    args = resolve_args({"optimizer": "muon", "weight_decay": 0})
    optimizer = make_optimizer(section(args, "optimizer"), 0.01, classifier=classifier.path)
    # a gradient whose singular values span a factor of 50
    left, _ = np.linalg.qr(rng.normal(size=(36, 8)))
    right, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    kernel_gradient = (left @ np.diag(np.geomspace(1, 0.02, 8)) @ right.T).astype("float32")
    classifier_gradient = rng.normal(size=(8, 10)).astype("float32")
    optimizer.apply_gradients(
        [(kernel_gradient.reshape(3, 3, 4, 8), kernel), (classifier_gradient, classifier)]
    )
    singular = np.linalg.svd(-kernel.numpy().reshape(36, 8), compute_uv=False)
    assert singular.max() / singular.min() < 2  # near-orthogonal, as a (36, 8) matrix
    # the classifier took Adam's first step instead: learning rate times the gradient's sign
    np.testing.assert_allclose(-classifier.numpy(), 0.01 * np.sign(classifier_gradient), rtol=1e-3)


def test_fast_cnn_with_muon_trains_saves_and_loads(tmp_path):
    from models.parts import classifier_kernel
    from utils.training.loop import compile_model

    args = resolve_args({"optimizer": "muon", "learning_rate": 0.02, "momentum": 0.6, "precision": "float32"})
    model = models.build_model("fast_cnn", widths=(8, 16, 16))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, 10, 64), 10)
    models.adapt_to_images(model, images)
    compile_model(model, training_settings(args), args["learning_rate"])
    assert classifier_kernel(model) == model.get_layer("logits").kernel.path
    assert model.optimizer.exclude_layers and not model.optimizer._should_use_adamw(
        model.get_layer("block1_conv1").kernel
    )
    losses = model.fit(images, labels, batch_size=32, epochs=6, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    model.save(tmp_path / "muon.keras")
    loaded = keras.saving.load_model(tmp_path / "muon.keras")
    assert type(loaded.optimizer).__name__ == "FactorMuon"
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


def test_muon_sgd_routes_kernels_to_muon_with_held_norms_and_the_rest_to_sgd():
    from utils.training.optimizers import FactorMuon, FactorSGD, make_optimizer

    rng = np.random.default_rng(0)
    kernel = keras.Variable(rng.normal(size=(3, 3, 4, 8)).astype("float32") * 5, name="kernel")
    shift = keras.Variable(np.zeros(8, "float32"), name="shift")
    args = resolve_args({"optimizer": "muon_sgd", "momentum": 0.0, "muon_lr_factor": 0.1, "weight_decay": 0})
    optimizer = make_optimizer(section(args, "optimizer"), 0.5, matrices=[kernel.path])
    assert isinstance(optimizer, keras.optimizers.MultiOptimizer)
    assert [type(part) for part in optimizer.optimizers] == [FactorMuon, FactorSGD]
    held = kernel.numpy() * np.sqrt(8) / np.linalg.norm(kernel.numpy())
    shift_gradient = rng.normal(size=8).astype("float32")
    optimizer.apply_gradients(
        [(rng.normal(size=(3, 3, 4, 8)).astype("float32"), kernel), (shift_gradient, shift)]
    )
    # the kernel was rescaled to norm sqrt(8 output channels), then took a near-orthogonal step of
    # size 0.5 * 0.1 (3 Newton-Schulz steps leave singular values roughly in 0.5-1.5)
    singular = np.linalg.svd((held - kernel.numpy()).reshape(36, 8) / 0.05, compute_uv=False)
    assert 0.3 < singular.min() and singular.max() < 1.6
    # the shift took plain SGD's step at the full rate
    np.testing.assert_allclose(shift.numpy(), -0.5 * shift_gradient, rtol=1e-5)


def test_fast_muon_preset_trains_fast_cnn_saves_and_loads(tmp_path):
    from utils.training.loop import compile_model, inner_matrices
    from utils.training.optimizers import base_learning_rate

    args = resolve_args({"preset": "fast_muon", "precision": "float32"})
    assert args["optimizer"] == "muon_sgd" and args["lookahead_steps"] is None
    model = models.build_model("fast_cnn", widths=(8, 16, 16))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, 10, 64), 10)
    models.adapt_to_images(model, images)
    compile_model(model, training_settings(args), 0.5)
    assert set(inner_matrices(model)) == {
        model.get_layer(f"block{block}_conv{index}").kernel.path for block in (1, 2, 3) for index in (1, 2)
    }
    losses = model.fit(images, labels, batch_size=32, epochs=6, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    conv = model.get_layer("block2_conv2").kernel.numpy()
    assert abs(np.linalg.norm(conv) - 4.0) < 0.5  # held near sqrt(16 output channels)
    assert float(base_learning_rate(model.optimizer)) == 0.5
    model.save(tmp_path / "fast_muon.keras")
    loaded = keras.saving.load_model(tmp_path / "fast_muon.keras")
    assert [type(part).__name__ for part in loaded.optimizer.optimizers] == ["FactorMuon", "FactorSGD"]
    assert loaded.optimizer.optimizers[0].hold_norms
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


def test_muon_sgd_state_survives_a_weights_backup(tmp_path):
    """The epoch backups (save_weights) carry both parts of the MultiOptimizer, so a resumed run
    continues their momentum and step counts."""
    from utils.training.loop import compile_model

    args = resolve_args({"preset": "fast_muon", "precision": "float32"})
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, 10, 64), 10)

    def compiled_model():
        model = models.build_model("fast_cnn", widths=(8, 16, 16))
        models.adapt_to_images(model, images)
        compile_model(model, training_settings(args), 0.5)
        return model

    trained = compiled_model()
    trained.fit(images, labels, batch_size=32, epochs=2, verbose=0)
    trained.save_weights(tmp_path / "backup.weights.h5")
    resumed = compiled_model()
    resumed.optimizer.build(resumed.trainable_variables)
    resumed.load_weights(tmp_path / "backup.weights.h5")
    assert [int(part.iterations.numpy()) for part in resumed.optimizer.optimizers] == [4, 4]
    for saved, loaded in zip(trained.optimizer.variables, resumed.optimizer.variables, strict=True):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
