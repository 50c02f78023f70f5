"""McNemar's test and the paired bootstrap on constructed predictions with known answers."""

import numpy as np
import pytest

from utils.evaluation.significance import (
    bootstrap_interval,
    compare_pair,
    comparisons_markdown,
    mcnemar_p_value,
    pairwise_comparisons,
)

IMAGES = 10_000


def correctness(right, seed=0):
    """A boolean vector of IMAGES with `right` True entries at random places."""
    correct = np.zeros(IMAGES, bool)
    correct[np.random.default_rng(seed).permutation(IMAGES)[:right]] = True
    return correct


def test_identical_models_differ_by_nothing():
    same = correctness(8_900)
    result = compare_pair("a", "b", same, same)
    assert result.p_value == 1.0 and (result.low, result.high) == (0.0, 0.0) and result.difference == 0.0
    assert not result.significant
    assert result.sentence().startswith("no significant difference between a and b (+0.00 points")


def test_a_model_right_on_300_more_images_wins_significantly():
    second = correctness(8_700)
    first = second.copy()
    first[np.flatnonzero(~second)[:300]] = True  # right wherever the second is, and on 300 more
    result = compare_pair("first", "second", first, second)
    assert (result.only_first, result.only_second) == (300, 0)
    assert result.p_value < 0.001 and result.difference == pytest.approx(0.03)
    assert 0.025 < result.low < 0.03 < result.high < 0.035 and result.significant
    assert result.sentence().startswith(
        "first beats second by 3.00 points (95% paired bootstrap interval +2."
    )
    swapped = result.swapped()
    assert (swapped.first, swapped.low, swapped.only_second) == ("second", -result.high, 300)
    assert swapped.difference == pytest.approx(-0.03)


def test_a_small_gap_of_two_noisy_models_is_not_significant():
    first, second = correctness(8_950, seed=1), correctness(8_920, seed=2)
    result = compare_pair("first", "second", first, second)
    assert result.difference == pytest.approx(0.003) and result.p_value > 0.05
    assert result.low < 0 < result.high and not result.significant


def test_mcnemar_matches_the_binomial_by_hand():
    # 10 discordant images, 9 for the first: P(X >= 9) * 2 with X ~ Bin(10, 1/2) = 2 * 11 / 1024
    assert mcnemar_p_value(9, 1) == pytest.approx(22 / 1024)
    assert mcnemar_p_value(0, 0) == 1.0


def test_the_bootstrap_is_seeded():
    first, second = correctness(8_950, seed=1), correctness(8_920, seed=2)
    assert bootstrap_interval(first, second) == bootstrap_interval(first, second)
    assert bootstrap_interval(first, second, seed=1) != bootstrap_interval(first, second)


def test_every_pair_of_models_is_compared_from_their_probabilities():
    labels = np.array([0, 1, 2, 0])
    probabilities = {
        "a": np.eye(3)[[0, 1, 2, 0]],  # all right
        "b": np.eye(3)[[0, 1, 2, 1]],  # wrong on the last
        "c": np.eye(3)[[1, 1, 2, 1]],
    }
    comparisons = pairwise_comparisons(probabilities, labels)
    assert [(item.first, item.second) for item in comparisons] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [(item.only_first, item.only_second) for item in comparisons] == [(1, 0), (2, 0), (1, 0)]
    table = comparisons_markdown(comparisons)
    assert table.splitlines()[2].startswith("| a | b | +25.00 |")
    with pytest.raises(ValueError, match="tested on different images"):
        compare_pair("a", "b", np.ones(3, bool), np.ones(4, bool))


def test_per_class_p_values_test_each_class_on_its_own_images():
    from utils.evaluation.significance import per_class_p_values

    labels = np.repeat([0, 1], 100)
    first = np.ones(200, bool)
    second = first.copy()
    second[:30] = False  # wrong on 30 images of class 0 only
    p_values = per_class_p_values(first, second, labels, ["cat", "dog"])
    assert p_values["cat"] < 0.001 and p_values["dog"] == 1.0
