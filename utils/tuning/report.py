"""What a search leaves behind: the trials table (CSV, markdown), the figure of validation accuracy
per trial and against each searched key, and `best_args.json` for `train.py --config`."""

import csv
import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

from utils.plots import save_figure
from utils.runs.folders import write_json
from utils.tuning.spaces import apply_values

TRIAL_RESULTS = ("val_accuracy", "epochs", "train_seconds")
BEST_ARGS_FILE = "best_args.json"


def trial_rows(oracle, space):
    """One row per trial, in trial order: id, status, searched values and results (None where a
    trial has none, e.g. one that failed)."""
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        results = {
            name: trial.metrics.get_last_value(name) if trial.metrics.exists(name) else None
            for name in TRIAL_RESULTS
        }
        values = {key: trial.hyperparameters.values.get(key) for key in space}
        rows.append({"trial": trial_id, "status": str(trial.status), **values, **results})
    return rows


def _cell(value):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trials_markdown(rows):
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(row[column]) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def trials_figure(rows, space):
    """Validation accuracy per trial (with the best so far), then against each searched key."""
    done = [row for row in rows if row["val_accuracy"] is not None]
    figure, axes = plt.subplots(1, len(space) + 1, figsize=(3.2 * (len(space) + 1), 3.2), squeeze=False)
    accuracy = 100 * np.array([row["val_accuracy"] for row in done])
    first = axes[0, 0]
    first.plot(range(len(done)), accuracy, "o", label="trial")
    first.plot(
        range(len(done)), np.maximum.accumulate(accuracy) if len(done) else [], "-", label="best so far"
    )
    first.set(xlabel="trial (in order)", ylabel="validation accuracy (%)", title="Search progress")
    first.legend(fontsize=8)
    for axis, (key, spec) in zip(axes[0, 1:], space.items()):
        values = [row[key] for row in done]
        if "values" in spec:  # a choice: one column per value, in the space's order
            positions = [spec["values"].index(value) for value in values]
            axis.set_xticks(range(len(spec["values"])), [str(v) for v in spec["values"]])
            values = positions
        elif spec.get("sampling", "linear") != "linear":
            axis.set_xscale("log")
            axis.xaxis.set_minor_formatter(NullFormatter())  # within one decade they overlap
        axis.plot(values, accuracy, "o")
        axis.set(xlabel=key.replace("model_options.", ""), title=key.split(".")[-1])
    figure.tight_layout()
    return figure


def best_overrides(oracle, base_overrides):
    """The user's overrides with the best trial's values: `train.py --config` takes them as they
    are (no run name, so the training gets a folder of its own)."""
    best = oracle.get_best_trials(1)
    if not best:
        return None
    overrides = apply_values(base_overrides, best[0].hyperparameters.values)
    overrides.pop("run_name", None)
    return overrides


def write_search_outputs(oracle, space, base_overrides, folder):
    """trials.csv, trials.md, trials.png and best_args.json in `folder`; returns the markdown
    table (None before any trial)."""
    rows = trial_rows(oracle, space)
    if not rows:
        return None
    with open(os.path.join(folder, "trials.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = trials_markdown(rows)
    with open(os.path.join(folder, "trials.md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    figure = trials_figure(rows, space)
    save_figure(figure, os.path.join(folder, "trials.png"))
    plt.close(figure)
    best = best_overrides(oracle, base_overrides)
    if best is not None:
        write_json(os.path.join(folder, BEST_ARGS_FILE), best)
    return table
