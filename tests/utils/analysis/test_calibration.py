import numpy as np
import pytest

from utils.analysis.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
)


def confident_predictions(count, seed, classes=10):
    """Probabilities whose top class has a confidence spread over [0.2, 1)."""
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0.2, 1.0, count)
    top = rng.integers(0, classes, count)
    probabilities = np.repeat(((1 - confidence) / (classes - 1))[:, None], classes, axis=1)
    probabilities[np.arange(count), top] = confidence
    return probabilities


def labels_drawn_from(probabilities, seed):
    rng = np.random.default_rng(seed)
    cumulative = probabilities.cumsum(axis=1)
    return (rng.random(len(probabilities))[:, None] > cumulative).sum(axis=1)


def test_ece_of_a_hand_computed_case():
    probabilities = np.array([[0.9, 0.1]] * 10 + [[0.3, 0.7]] * 10)
    labels = np.array([0] * 8 + [1] * 2 + [1] * 7 + [0] * 3)
    # bin of 0.9: accuracy 0.8; bin of 0.7: accuracy 0.7
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.5 * 0.1 + 0.5 * 0.0)


def test_ece_near_zero_when_calibrated_and_high_when_over_confident():
    probabilities = confident_predictions(20_000, seed=0)
    calibrated_labels = labels_drawn_from(probabilities, seed=1)
    assert expected_calibration_error(probabilities, calibrated_labels) < 0.015
    # The same predictions where the truth follows a softer distribution: over-confident.
    softer_labels = labels_drawn_from(apply_temperature(probabilities, 3.0), seed=1)
    assert expected_calibration_error(probabilities, softer_labels) > 0.15


def test_reliability_bins_count_every_image_once():
    probabilities = confident_predictions(1000, seed=2)
    counts, confidence, _ = reliability_bins(probabilities, np.zeros(1000, int))
    assert counts.sum() == 1000 and len(counts) == 15
    filled = counts > 0
    edges = np.arange(16) / 15
    assert np.all(confidence[filled] > edges[:-1][filled]) and np.all(confidence[filled] <= edges[1:][filled])


def test_temperature_keeps_the_predicted_class_and_one_is_identity():
    probabilities = confident_predictions(100, seed=3)
    np.testing.assert_allclose(apply_temperature(probabilities, 1.0), probabilities, rtol=1e-9)
    for temperature in (0.5, 2.0):
        scaled = apply_temperature(probabilities, temperature)
        np.testing.assert_allclose(scaled.sum(axis=1), 1.0)
        np.testing.assert_array_equal(scaled.argmax(axis=1), probabilities.argmax(axis=1))
    assert apply_temperature(probabilities, 2.0).max(axis=1).mean() < probabilities.max(axis=1).mean()


def test_fitted_temperature_lowers_nll_and_softens_over_confidence():
    probabilities = confident_predictions(5000, seed=4)
    labels = labels_drawn_from(apply_temperature(probabilities, 3.0), seed=5)
    temperature = fit_temperature(probabilities, labels)
    assert temperature > 1.5
    before = negative_log_likelihood(probabilities, labels)
    assert negative_log_likelihood(apply_temperature(probabilities, temperature), labels) < before - 0.1
    assert expected_calibration_error(apply_temperature(probabilities, temperature), labels) < 0.05


def test_fitted_temperature_of_calibrated_predictions_is_near_one():
    probabilities = confident_predictions(20_000, seed=6)
    assert fit_temperature(probabilities, labels_drawn_from(probabilities, seed=7)) == pytest.approx(
        1.0, abs=0.1
    )
