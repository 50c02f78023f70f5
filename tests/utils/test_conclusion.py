"""The run's conclusion names a winner only when the paired test says the gap is real."""

import types

import numpy as np

from models import parts
from utils.evaluation.significance import pairwise_comparisons
from utils.steps import Evaluation, conclusion

LABELS = np.arange(2000) % 10


def trained(name, pretrained):
    layer = types.SimpleNamespace(name=parts.BACKBONE if pretrained else "conv")
    return types.SimpleNamespace(name=name, model=types.SimpleNamespace(layers=[layer]))


def evaluation(right_scratch, right_pretrained):
    """An evaluation of a from-scratch and a pretrained model right on the first N test images each."""
    probabilities = {}
    for name, right in (("scratch", right_scratch), ("pretrained", right_pretrained)):
        predicted = np.where(np.arange(len(LABELS)) < right, LABELS, (LABELS + 1) % 10)
        probabilities[name] = np.eye(10)[predicted]
    rows = [
        {
            "model": name,
            "test_accuracy": float(np.mean(values.argmax(1) == LABELS)),
            "test_loss": 0.5,
            "train_seconds": 60.0,
        }
        for name, values in probabilities.items()
    ]
    comparisons = pairwise_comparisons(probabilities, LABELS)
    return Evaluation(rows, probabilities, [], "", None, comparisons, LABELS, [str(n) for n in range(10)])


def test_a_real_gap_names_the_winner_with_its_interval_and_p_value():
    text = conclusion(evaluation(1700, 1800), [trained("scratch", False), trained("pretrained", True)])
    assert "Best model: **pretrained** with 90.00% test accuracy" in text
    assert (
        "transfer learning wins: pretrained beats scratch by 5.00 points (95% paired bootstrap interval"
        in text
    )
    assert "McNemar p < 0.001; 100 test images only pretrained gets right, 0 only scratch" in text


def test_a_gap_within_the_noise_names_no_winner():
    text = conclusion(evaluation(1800, 1803), [trained("scratch", False), trained("pretrained", True)])
    assert (
        "neither approach wins: no significant difference between pretrained and scratch (+0.15 points"
        in text
    )


def summary(name, f1):
    calibration = {"before": {"ece": 0.1}, "after": {"ece": 0.02}, "temperature": 1.5}
    return {"model": name, "per_class": {"f1": f1}, "calibration": calibration, "robustness": {"mean": 0.6}}


def test_per_class_gains_are_starred_where_the_classes_differ_significantly():
    result = evaluation(1700, 1800)  # the pretrained model is right on images 1700-1799: classes 0-9 alike
    f1 = {str(n): 0.8 for n in range(10)}
    result.summaries = [summary("scratch", f1), summary("pretrained", {**f1, "0": 0.9, "1": 0.81})]
    text = conclusion(result, [trained("scratch", False), trained("pretrained", True)])
    assert "transfer learning helps most on 0 (+10.0*), 1 (+1.0*)" in text
    assert "(*: the two differ on that class's test images, McNemar p < 0.05)" in text
