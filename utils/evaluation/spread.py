"""Several seeds of the same models: each model's spread over its seeds, and each difference between
two models over the seeds they share (a Student-t interval of the mean per-seed difference, with
scipy)."""

import dataclasses
import itertools
import math

import numpy as np
from scipy.stats import t as student_t

from utils.evaluation.significance import LEVEL

SPREAD_METRICS = ("test_accuracy", "test_accuracy_tta", "test_loss", "train_seconds")


def _group(rows):
    grouped = {}
    for row in rows:
        grouped.setdefault(row["model"], []).append(row)
    return grouped


def spread_rows(rows):
    """One row per model from its rows (one per seed or finished run), in order: `runs` (how many),
    `seeds`, and for each of SPREAD_METRICS its mean, sample standard deviation (0 for one row), min
    and max."""
    spread = []
    for model, group in _group(rows).items():
        summary = {"model": model, "runs": len(group), "seeds": [row.get("seed") for row in group]}
        for metric in SPREAD_METRICS:
            values = np.array([row[metric] for row in group if row.get(metric) is not None], dtype=float)
            summary[metric] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "min": float(values.min()),
                "max": float(values.max()),
            }
        spread.append(summary)
    return spread


def has_spread(rows):
    """Whether some model has more than one row."""
    return any(len(group) > 1 for group in _group(rows).values())


def mean_interval(values, level=LEVEL):
    """(mean, low, high): the Student-t interval of the mean of `values` (at least two)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        raise ValueError(f"An interval over seeds needs at least two values, got {len(values)}.")
    mean = float(values.mean())
    half = student_t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - float(half), mean + float(half)


@dataclasses.dataclass(frozen=True)
class SeedComparison:
    """`first` against `second` over the seeds both trained with: the per-seed test-accuracy
    differences (first minus second), their mean and its interval."""

    first: str
    second: str
    seeds: tuple
    differences: tuple
    mean: float
    low: float
    high: float

    @property
    def significant(self):
        """Whether the interval over seeds leaves out 0."""
        return not self.low <= 0 <= self.high

    def swapped(self):
        """The same comparison as `second` against `first`."""
        flipped = tuple(-value for value in self.differences)
        return SeedComparison(self.second, self.first, self.seeds, flipped, -self.mean, -self.high, -self.low)

    def sentence(self):
        """The comparison over seeds in words, the winner first when there is one."""
        evidence = (
            f"{LEVEL:.0%} interval over {len(self.seeds)} seeds {100 * self.low:+.2f} to "
            f"{100 * self.high:+.2f} points"
        )
        if not self.significant:
            return (
                f"over the seeds, no significant difference between {self.first} and {self.second} "
                f"(mean {100 * self.mean:+.2f} points; {evidence})"
            )
        winner, loser = (self.first, self.second) if self.mean > 0 else (self.second, self.first)
        return f"over the seeds, {winner} beats {loser} by {100 * abs(self.mean):.2f} points ({evidence})"


def seed_comparisons(rows):
    """Every pair of models (in order) compared over the seeds both have (pairs sharing fewer than two
    seeds are left out)."""
    accuracy = {
        model: {row["seed"]: row["test_accuracy"] for row in group} for model, group in _group(rows).items()
    }
    comparisons = []
    for first, second in itertools.combinations(accuracy, 2):
        seeds = tuple(seed for seed in accuracy[first] if seed in accuracy[second])
        if len(seeds) < 2:
            continue
        differences = tuple(accuracy[first][seed] - accuracy[second][seed] for seed in seeds)
        comparisons.append(SeedComparison(first, second, seeds, differences, *mean_interval(differences)))
    return comparisons


def _mean_sd(statistics, scale=100.0, digits=2):
    return f"{scale * statistics['mean']:.{digits}f} ± {scale * statistics['std']:.{digits}f}"


def spread_markdown(spread):
    """Each model's spread over its seeds as a markdown table (accuracies in percent)."""
    lines = [
        "| model | seeds | test accuracy (mean ± sd) | min - max | flip TTA (mean ± sd) "
        "| test loss (mean ± sd) | train s (mean) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in spread:
        accuracy = row["test_accuracy"]
        lines.append(
            f"| {row['model']} | {', '.join(str(seed) for seed in row['seeds'])} | "
            f"{_mean_sd(accuracy)}% | {100 * accuracy['min']:.2f} - {100 * accuracy['max']:.2f}% | "
            f"{_mean_sd(row['test_accuracy_tta'])}% | {_mean_sd(row['test_loss'], 1.0, 4)} | "
            f"{row['train_seconds']['mean']:.0f} |"
        )
    return "\n".join(lines)


def seed_comparisons_markdown(comparisons):
    """The differences over seeds as a markdown table."""
    lines = [
        f"| first | second | per-seed differences (points) | mean | {LEVEL:.0%} interval over seeds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for item in comparisons:
        per_seed = ", ".join(
            f"{100 * value:+.2f} (seed {seed})" for seed, value in zip(item.seeds, item.differences)
        )
        lines.append(
            f"| {item.first} | {item.second} | {per_seed} | {100 * item.mean:+.2f} | "
            f"{100 * item.low:+.2f} to {100 * item.high:+.2f} |"
        )
    return "\n".join(lines)
