"""Is one model better than another on the same test images, or is the gap noise?

Two paired views of the per-image correctness of two models: McNemar's exact test (a two-sided
binomial test on the images where exactly one of them is right, with scipy) and a paired bootstrap
interval of their accuracy difference (images resampled with replacement, both models together).
"""

import dataclasses
import itertools

import numpy as np
from scipy.stats import binomtest

LEVEL = 0.95
RESAMPLES = 5000
SEED = 0


@dataclasses.dataclass(frozen=True)
class PairedComparison:
    """`first` against `second` on the same images: accuracy difference (first minus second), its
    bootstrap interval, McNemar's p-value and the images only one of them gets right."""

    first: str
    second: str
    difference: float
    low: float
    high: float
    p_value: float
    only_first: int
    only_second: int

    def swapped(self):
        """The same comparison as `second` against `first`."""
        return PairedComparison(
            self.second,
            self.first,
            -self.difference,
            -self.high,
            -self.low,
            self.p_value,
            self.only_second,
            self.only_first,
        )

    @property
    def significant(self):
        """Whether the interval leaves out 0 (a real difference at the interval's level)."""
        return not self.low <= 0 <= self.high

    def sentence(self):
        """The comparison in words, the winner first when there is one."""
        points = 100 * abs(self.difference)
        evidence = (
            f"{LEVEL:.0%} paired bootstrap interval {100 * self.low:+.2f} to {100 * self.high:+.2f} points, "
            f"McNemar p {_p_text(self.p_value)}; {self.only_first} test images only {self.first} gets right, "
            f"{self.only_second} only {self.second}"
        )
        if not self.significant:
            return (
                f"no significant difference between {self.first} and {self.second} "
                f"({100 * self.difference:+.2f} points; {evidence})"
            )
        winner, loser = (self.first, self.second) if self.difference > 0 else (self.second, self.first)
        return f"{winner} beats {loser} by {points:.2f} points ({evidence})"


def _p_text(p_value):
    return "< 0.001" if p_value < 0.001 else f"= {p_value:.3f}"


def mcnemar_p_value(only_first, only_second):
    """McNemar's exact two-sided p-value from the discordant counts (1 when there are none)."""
    discordant = only_first + only_second
    return 1.0 if discordant == 0 else float(binomtest(only_first, discordant, 0.5).pvalue)


def bootstrap_interval(correct_first, correct_second, resamples=RESAMPLES, seed=SEED, level=LEVEL):
    """The paired bootstrap interval of the accuracy difference. Resampling n images only changes
    how many of them fall in each kind (first alone right, second alone right, neither or both), so
    the counts are drawn from a multinomial directly: the same distribution, without n x resamples
    indices."""
    correct_first, correct_second = np.asarray(correct_first, bool), np.asarray(correct_second, bool)
    count = len(correct_first)
    shares = (
        np.array([np.sum(correct_first & ~correct_second), np.sum(~correct_first & correct_second)]) / count
    )
    drawn = np.random.default_rng(seed).multinomial(count, [*shares, 1 - shares.sum()], size=resamples)
    differences = (drawn[:, 0] - drawn[:, 1]) / count
    tail = (1 - level) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return float(low), float(high)


def compare_pair(first, second, correct_first, correct_second):
    """A `PairedComparison` of two models from their per-image correctness on the same images."""
    correct_first, correct_second = np.asarray(correct_first, bool), np.asarray(correct_second, bool)
    if correct_first.shape != correct_second.shape:
        raise ValueError(
            f"{first} and {second} were tested on different images "
            f"({correct_first.size} and {correct_second.size})."
        )
    only_first = int(np.sum(correct_first & ~correct_second))
    only_second = int(np.sum(~correct_first & correct_second))
    low, high = bootstrap_interval(correct_first, correct_second)
    return PairedComparison(
        first,
        second,
        float(correct_first.mean() - correct_second.mean()),
        low,
        high,
        mcnemar_p_value(only_first, only_second),
        only_first,
        only_second,
    )


def pairwise_comparisons(probabilities, labels):
    """Every pair of models (in the given order) compared on the same test images, from their class
    probabilities ({name: (images, classes)})."""
    correct = {name: np.argmax(values, axis=1) == labels for name, values in probabilities.items()}
    return [
        compare_pair(first, second, correct[first], correct[second])
        for first, second in itertools.combinations(correct, 2)
    ]


def per_class_p_values(correct_first, correct_second, labels, class_names):
    """{class name: McNemar's p-value of two models on that class's test images}."""
    p_values = {}
    for index, name in enumerate(class_names):
        first, second = correct_first[labels == index], correct_second[labels == index]
        p_values[name] = mcnemar_p_value(int(np.sum(first & ~second)), int(np.sum(~first & second)))
    return p_values


def comparisons_markdown(comparisons):
    """The pairwise comparisons as a markdown table."""
    lines = [
        f"| first | second | difference (points) | {LEVEL:.0%} interval | McNemar p | only first right | "
        "only second right |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for item in comparisons:
        lines.append(
            f"| {item.first} | {item.second} | {100 * item.difference:+.2f} | "
            f"{100 * item.low:+.2f} to {100 * item.high:+.2f} | {_p_text(item.p_value).lstrip('= ')} | "
            f"{item.only_first} | {item.only_second} |"
        )
    return "\n".join(lines)
