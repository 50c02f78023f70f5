"""The report across runs: one table of every model of every finished run folder (each seed's), the
spread of each model trained several times on the same recipe, and the trade-off of test accuracy
against training time with its Pareto front. Never retrains."""

import csv
import json
import os

import matplotlib.pyplot as plt
import numpy as np

from utils.analysis.figures import pareto_figure
from utils.analysis.summary import ANALYSIS_FILE
from utils.config.resolve import args_for_model
from utils.config.settings import MODEL_ARGS_KEYS
from utils.errors import RunFolderError
from utils.evaluation.spread import has_spread, spread_markdown, spread_rows
from utils.plots import save_figure
from utils.runs.folders import ARGS_FILE, METRICS_FILE, RunFolder, read_history, read_json
from utils.training.callbacks import BEST_MODEL_FILE, HISTORY_FILE

# What makes two trainings of a model the same recipe, besides its own args (MODEL_ARGS_KEYS).
RECIPE_KEYS = (*MODEL_ARGS_KEYS, "val_fraction", "small_run", "weights", "precision")

REPORT_COLUMNS = (
    "model",
    "seed",
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


def recipe_of(run_args, model):
    """What model `model` was trained with in a run of `run_args`, as comparable text: its args
    (RECIPE_KEYS) and builder options; not the seed, the output folder nor the analysis."""
    own = args_for_model({**run_args, "model_args": run_args.get("model_args") or {}}, model)
    recipe = {key: own.get(key) for key in RECIPE_KEYS}
    recipe["model_options"] = run_args.get("model_options", {}).get(model, {})
    return json.dumps(recipe, sort_keys=True)


def model_row(run_path, metrics):
    """One report row from a model's metrics and the analysis in its sub-folder (if any)."""
    seed = metrics.get("seed")
    model_dir = RunFolder(run_path, resumed=True).model_dir(metrics["model"], seed)
    analysis = read_json(os.path.join(model_dir, ANALYSIS_FILE), default={})
    return {
        "model": metrics["model"],
        "seed": seed,
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
    """Every model of every finished run in `output_dir` (each seed's), in run order, with its
    recipe (`recipe_of`) and its seed (the run's, for a run without args["seeds"])."""
    rows = []
    for run_path in finished_runs(output_dir):
        run_args = read_json(os.path.join(run_path, ARGS_FILE), default={})
        for metrics in read_json(os.path.join(run_path, METRICS_FILE)).values():
            row = model_row(run_path, metrics)
            seed = run_args.get("seed") if row["seed"] is None else row["seed"]
            rows.append({**row, "seed": seed, "recipe": recipe_of(run_args, metrics["model"])})
    if not rows:
        raise RunFolderError(f"{output_dir} holds no finished run (a sub-folder with {METRICS_FILE}).")
    return rows


def recipe_groups(rows):
    """The spread (`spread_rows`) of each model trained more than once on the same recipe, with
    the runs it was trained in; recipes are numbered per model in order of appearance."""
    recipes, groups = {}, {}
    for row in rows:
        numbers = recipes.setdefault(row["model"], {})
        number = numbers.setdefault(row["recipe"], len(numbers) + 1)
        groups.setdefault((row["model"], number), []).append(row)
    spread = []
    for (model, number), group in groups.items():
        if has_spread(group):
            label = model if len(recipes[model]) == 1 else f"{model} (recipe {number})"
            (summary,) = spread_rows([{**row, "model": label} for row in group])
            spread.append({**summary, "runs_in": sorted({row["run"] for row in group})})
    return spread


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
        writer = csv.DictWriter(handle, fieldnames=[*REPORT_COLUMNS, "pareto"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**row, "pareto": index in front} for index, row in enumerate(rows))
    table = report_markdown(rows, front)
    spread = recipe_groups(rows)
    if spread:
        runs = "; ".join(f"{item['model']}: {', '.join(item['runs_in'])}" for item in spread)
        table += (
            "\n\nModels trained more than once on the same recipe (over their seeds and runs):\n\n"
            f"{spread_markdown(spread)}\n\nRuns: {runs}."
        )
    with open(os.path.join(output_dir, "report.md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    figure = pareto_figure(rows, front)
    save_figure(figure, os.path.join(output_dir, "report.png"))
    plt.close(figure)
    return table
