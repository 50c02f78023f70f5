"""The budget frontier: the best test accuracy each approach reaches within a training time.

A frontier record (written by `benchmarks/accuracy/budget_frontier.py`) holds finished runs ("points"),
each with its approach ("from scratch" or "pretrained"), how it trained (scratch, frozen,
finetune), its training time and test accuracy. Reading it needs no TensorFlow.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter

from utils.evaluation.report import pareto_front

BUDGET_MINUTES = (5, 15, 30, 60)
APPROACH_OF_PHASE = {"scratch": "from scratch", "frozen": "pretrained", "finetune": "pretrained"}
APPROACHES = ("from scratch", "pretrained")


def best_within(points, approach, minutes):
    """The most accurate point of `approach` trained within `minutes`, or None."""
    fitting = [
        point for point in points if point["approach"] == approach and point["train_seconds"] <= 60 * minutes
    ]
    return max(fitting, key=lambda point: point["test_accuracy"], default=None)


def winners(points, budgets=BUDGET_MINUTES):
    """For each budget (minutes, as a string key): each approach's best point name and accuracy,
    and the winning approach (None when neither finished a run within it)."""
    table = {}
    for minutes in budgets:
        best = {approach: best_within(points, approach, minutes) for approach in APPROACHES}
        entries = {a: p for a, p in best.items() if p is not None}
        table[str(minutes)] = {
            "best": {a: {"name": p["name"], "test_accuracy": p["test_accuracy"]} for a, p in entries.items()},
            "winner": max(entries, key=lambda a: entries[a]["test_accuracy"]) if entries else None,
        }
    return table


def _describe(entry):
    return f"{entry['name']} ({100 * entry['test_accuracy']:.2f}%)"


def frontier_conclusion(record):
    """One markdown line per budget saying which approach wins, computed from `record`."""
    lines = []
    for minutes, row in winners(record["points"]).items():
        best = row["best"]
        if row["winner"] is None:
            lines.append(f"- Within {minutes} minutes: no run of either approach finished.")
            continue
        loser = next((a for a in APPROACHES if a != row["winner"] and a in best), None)
        against = (
            f" over {loser} {_describe(best[loser])}" if loser else f"; no {_other(row['winner'])} run fits"
        )
        lines.append(
            f"- Within {minutes} minutes: **{row['winner']}** wins with {_describe(best[row['winner']])}"
            f"{against}."
        )
    return "\n".join(lines)


def _other(approach):
    return next(a for a in APPROACHES if a != approach)


def frontier_figure(record):
    """Test accuracy against training time of every point, and each approach's front as a
    staircase (the best accuracy it reaches within each time), with the budgets marked."""
    figure, axis = plt.subplots(figsize=(10, 5))
    markers = {"scratch": "o", "frozen": "s", "finetune": "^"}
    colors = dict(zip(APPROACHES, ("tab:blue", "tab:orange")))
    longest = max(point["train_seconds"] for point in record["points"]) / 60
    for approach in APPROACHES:
        points = [point for point in record["points"] if point["approach"] == approach]
        if not points:
            continue
        minutes = np.array([point["train_seconds"] / 60 for point in points])
        accuracy = np.array([100 * point["test_accuracy"] for point in points])
        for point, x, y in zip(points, minutes, accuracy):
            axis.scatter(x, y, marker=markers[point["phase"]], color=colors[approach], s=45)
            axis.annotate(point["name"], (x, y), fontsize=7, xytext=(4, -10), textcoords="offset points")
        front = pareto_front(points)
        axis.step(
            [*minutes[front], max(longest, max(BUDGET_MINUTES)) * 1.15],
            accuracy[[*front, front[-1]]],
            where="post",
            color=colors[approach],
            label=f"{approach} front",
        )
    for minutes in BUDGET_MINUTES:
        axis.axvline(minutes, color="grey", linestyle=":", linewidth=1)
    for phase, marker in markers.items():
        axis.scatter([], [], marker=marker, color="grey", label=phase)
    axis.set_xscale("log")
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_xlabel("training time (minutes, log scale; dotted: the 5, 15, 30 and 60-minute budgets)")
    axis.set_ylabel("test accuracy (%)")
    axis.grid(alpha=0.3, which="both")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return figure
