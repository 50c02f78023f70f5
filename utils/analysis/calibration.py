"""How sure a model is: expected calibration error, reliability bins and temperature scaling."""

import numpy as np
from scipy.optimize import minimize_scalar

ECE_BINS = 15
TEMPERATURE_RANGE = (0.05, 20.0)  # searched on a log scale
_SMALLEST_PROBABILITY = 1e-12


def reliability_bins(probabilities, labels, bins=ECE_BINS):
    """Per equal-width confidence bin (0, 1/bins], ..., ((bins-1)/bins, 1]: the number of
    images, their mean confidence and their accuracy (NaN for an empty bin)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(which, weights=correct, minlength=bins) / counts
    return counts, mean_confidence, accuracy


def expected_calibration_error(probabilities, labels, bins=ECE_BINS):
    """Mean |accuracy - confidence| over the confidence bins, weighted by their image counts."""
    counts, mean_confidence, accuracy = reliability_bins(probabilities, labels, bins)
    filled = counts > 0
    gaps = np.abs(accuracy[filled] - mean_confidence[filled])
    return float(np.sum(gaps * counts[filled]) / len(labels))


def negative_log_likelihood(probabilities, labels):
    true_class = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(true_class, _SMALLEST_PROBABILITY))))


def apply_temperature(probabilities, temperature):
    """Softmax(log p / T): T > 1 softens over-confident predictions, T < 1 sharpens; the
    predicted class never changes. Works on probabilities, so any softmax model qualifies."""
    logits = np.log(np.maximum(np.asarray(probabilities, np.float64), _SMALLEST_PROBABILITY)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def fit_temperature(probabilities, labels):
    """The temperature that minimises the negative log-likelihood of `labels` (validation data,
    never the test set), searched in TEMPERATURE_RANGE."""
    low, high = np.log(TEMPERATURE_RANGE)
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(apply_temperature(probabilities, np.exp(log_t)), labels),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))
