"""The report across runs: one table of every model of every finished run folder, and the
trade-off of test accuracy against training time with its Pareto front. Never retrains."""

import csv
import os

import matplotlib.pyplot as plt
import numpy as np

from utils.analysis.figures import pareto_figure
from utils.analysis.summary import ANALYSIS_FILE
from utils.errors import RunFolderError
from utils.plots import save_figure
from utils.runs.folders import METRICS_FILE, read_history, read_json
from utils.training.callbacks import BEST_MODEL_FILE, HISTORY_FILE

REPORT_COLUMNS = (
    "model",
    "run",
    "params",
    "train_seconds",
    "best_epoch",
    "test_loss",
    "test_accuracy",
    "test_accuracy_tta",
    "ece",
    "mean_corruption_accuracy",
)


def finished_runs(output_dir):
    """Sub-folders of `output_dir` that hold a finished run (their metrics.json), sorted."""
    if not os.path.isdir(output_dir):
        raise RunFolderError(f"{output_dir} is not a folder of runs.")
    names = sorted(os.listdir(output_dir))
    return [
        os.path.join(output_dir, n)
        for n in names
        if os.path.isfile(os.path.join(output_dir, n, METRICS_FILE))
    ]


def best_epoch(model_dir):
    """The epoch (from 1) whose weights were tested: the best by the monitored loss when a
    checkpoint was kept, else the last; None without a history."""
    history = read_history(os.path.join(model_dir, HISTORY_FILE))
    if not history.get("epoch"):
        return None
    if not os.path.isfile(os.path.join(model_dir, BEST_MODEL_FILE)):
        return len(history["epoch"])
    validation = history.get("val_loss", [])
    # older histories (CSVLogger) hold "NA" in val_loss when a run had no validation split
    measured = validation and all(isinstance(value, float) for value in validation)
    return int(np.argmin(validation if measured else history["loss"])) + 1


def model_row(run_path, metrics):
    """One report row from a model's metrics and the analysis in its sub-folder (if any)."""
    model_dir = os.path.join(run_path, metrics["model"])
    analysis = read_json(os.path.join(model_dir, ANALYSIS_FILE), default={})
    return {
        "model": metrics["model"],
        "run": os.path.basename(run_path),
        "params": metrics["params"],
        "train_seconds": metrics["train_seconds"],
        "best_epoch": best_epoch(model_dir),
        "test_loss": metrics["test_loss"],
        "test_accuracy": metrics["test_accuracy"],
        "test_accuracy_tta": metrics.get("test_accuracy_tta"),
        "ece": analysis.get("calibration", {}).get("before", {}).get("ece"),
        "mean_corruption_accuracy": analysis.get("robustness", {}).get("mean"),
    }


def report_rows(output_dir):
    """Every model of every finished run in `output_dir`, in run order."""
    rows = []
    for run_path in finished_runs(output_dir):
        rows += [
            model_row(run_path, metrics)
            for metrics in read_json(os.path.join(run_path, METRICS_FILE)).values()
        ]
    if not rows:
        raise RunFolderError(f"{output_dir} holds no finished run (a sub-folder with {METRICS_FILE}).")
    return rows


def pareto_front(rows):
    """Indices of the rows no other row beats on both training time and test accuracy,
    fastest first."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["train_seconds"], -rows[i]["test_accuracy"]))
    front, best = [], -1.0
    for index in order:
        if rows[index]["test_accuracy"] > best:
            front.append(index)
            best = rows[index]["test_accuracy"]
    return front


def _cell(column, value):
    if value is None:
        return "—"
    if column in ("test_accuracy", "test_accuracy_tta", "ece", "mean_corruption_accuracy"):
        return f"{100 * value:.2f}%"
    if column == "test_loss":
        return f"{value:.4f}"
    if column == "params":
        return f"{value:,}"
    if column == "train_seconds":
        return f"{value:.0f}"
    return str(value)


def report_markdown(rows, front):
    lines = ["| " + " | ".join(REPORT_COLUMNS) + " | Pareto |", "|" + " --- |" * (len(REPORT_COLUMNS) + 1)]
    for index, row in enumerate(rows):
        cells = [_cell(column, row[column]) for column in REPORT_COLUMNS]
        lines.append("| " + " | ".join(cells) + f" | {'yes' if index in front else ''} |")
    return "\n".join(lines)


def write_report(output_dir):
    """Write report.md, report.csv and report.png into `output_dir` from its finished runs.

    Returns:
        The markdown table.
    """
    rows = report_rows(output_dir)
    front = pareto_front(rows)
    with open(os.path.join(output_dir, "report.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*REPORT_COLUMNS, "pareto"])
        writer.writeheader()
        writer.writerows({**row, "pareto": index in front} for index, row in enumerate(rows))
    table = report_markdown(rows, front)
    with open(os.path.join(output_dir, "report.md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    figure = pareto_figure(rows, front)
    save_figure(figure, os.path.join(output_dir, "report.png"))
    plt.close(figure)
    return table
