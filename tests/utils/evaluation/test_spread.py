"""Spread over seeds and differences over seeds, with known answers."""

import math

import pytest

from utils.evaluation.spread import (
    has_spread,
    mean_interval,
    seed_comparisons,
    seed_comparisons_markdown,
    spread_markdown,
    spread_rows,
)


def row(model, seed, accuracy, seconds=100.0):
    return {
        "model": model,
        "seed": seed,
        "test_accuracy": accuracy,
        "test_accuracy_tta": accuracy + 0.01,
        "test_loss": 1 - accuracy,
        "train_seconds": seconds,
    }


ROWS = [row("a", 0, 0.80, 90), row("b", 0, 0.70), row("a", 1, 0.82, 110), row("b", 1, 0.71)]


def test_spread_gives_mean_sample_sd_and_range_per_model():
    spread = {item["model"]: item for item in spread_rows(ROWS)}
    accuracy = spread["a"]["test_accuracy"]
    assert spread["a"]["seeds"] == [0, 1] and spread["a"]["runs"] == 2
    assert accuracy["mean"] == pytest.approx(0.81) and accuracy["std"] == pytest.approx(0.02 / math.sqrt(2))
    assert (accuracy["min"], accuracy["max"]) == (0.80, 0.82)
    assert spread["a"]["train_seconds"]["mean"] == 100
    assert "| a | 0, 1 | 81.00 ± 1.41% | 80.00 - 82.00% | 82.00 ± 1.41% | 0.1900 ± 0.0141 | 100 |" in (
        spread_markdown(spread_rows(ROWS))
    )


def test_one_row_per_model_has_no_spread():
    assert not has_spread([row("a", 0, 0.8), row("b", 0, 0.7)])
    assert has_spread(ROWS)
    (single,) = spread_rows([row("a", 0, 0.8)])
    assert single["test_accuracy"]["std"] == 0.0


def test_interval_over_seeds_is_students_t():
    mean, low, high = mean_interval([0.03, 0.032])
    # t(0.975, 1 dof) = 12.706; sd 0.001414 / sqrt(2) = 0.001
    assert mean == pytest.approx(0.031)
    assert (low, high) == (
        pytest.approx(0.031 - 0.012706, abs=1e-5),
        pytest.approx(0.031 + 0.012706, abs=1e-5),
    )
    with pytest.raises(ValueError, match="at least two"):
        mean_interval([0.03])


def test_consistent_gap_is_significant_and_noise_is_not():
    (gap,) = seed_comparisons(ROWS)
    assert (gap.first, gap.second, gap.seeds) == ("a", "b", (0, 1))
    assert gap.differences == (pytest.approx(0.10), pytest.approx(0.11))
    assert gap.significant and gap.sentence().startswith("over the seeds, a beats b by 10.50 points")
    assert gap.swapped().mean == pytest.approx(-0.105) and gap.swapped().first == "b"
    (noise,) = seed_comparisons([row("a", 0, 0.80), row("b", 0, 0.79), row("a", 1, 0.80), row("b", 1, 0.81)])
    assert not noise.significant and "no significant difference" in noise.sentence()
    assert "+1.00 (seed 0), -1.00 (seed 1)" in seed_comparisons_markdown([noise])


def test_pairs_sharing_fewer_than_two_seeds_are_left_out():
    assert seed_comparisons([row("a", 0, 0.8), row("a", 1, 0.8), row("b", 0, 0.7), row("b", 2, 0.7)]) == []
