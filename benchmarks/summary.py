"""The tables of README.md and docs/ computed from the committed records (and the args table from
the settings), so that every number they show is a record's (tests/integration/test_readme.py
fails when a page and its records disagree).

    python -m benchmarks.summary            every table, in markdown
    python -m benchmarks.summary --write    refresh the tables in the pages (PAGES)

A page holds a table between `<!-- table:NAME -->` and `<!-- /table -->`.
"""

import argparse
import glob
import json
import os
import re
import statistics

from benchmarks.common import RESULTS, ROOT
from utils.config.settings import describe_args_markdown

FRONTIER = "budget_frontier/budget_frontier.json"
FRONTIER_INTEL_AMX = "budget_frontier/budget_frontier_intel_amx.json"
VERSUS_4_SEEDS = "versus_reference/versus_reference_muon_whiten32_4seeds.json"
DEFAULT_RUN = "default_run/default_run.json"


def read_record(relative):
    with open(os.path.join(RESULTS, relative), encoding="utf-8") as handle:
        return json.load(handle)


def hardware(machine):
    """A record's machine in a few words: cores, CPU and its widest vector feature."""
    if not isinstance(machine, dict):
        return "not recorded"
    features = set(machine.get("cpu_features", []))
    widest = next(
        (
            name
            for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx2", "AVX2"))
            if flag in features
        ),
        None,
    )
    cpu = machine.get("cpu", "CPU").replace("(R)", "").replace(" Processor", "")
    return f"{machine.get('cores', '?')}-core {cpu}" + (f" ({widest})" if widest else "")


def percent(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def percent_spread(values):
    """Accuracies of one recipe's seeds in words: the mean ± sample sd and the seed count, or the
    single value marked as one seed."""
    if len(values) == 1:
        return f"{percent(values[0])} (one seed)"
    return (
        f"{100 * statistics.mean(values):.2f}% ± {100 * statistics.stdev(values):.2f} ({len(values)} seeds)"
    )


def minutes(seconds):
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _frontier_point(name, record=FRONTIER):
    return next(point for point in read_record(record)["points"] if point["name"] == name)


def _train_folder_row(folder, model):
    metrics = read_record(f"train/{folder}/metrics.json")[model]
    machine = read_record(f"train/{folder}/record.json")["machine"]
    return metrics["test_accuracy"], metrics["test_accuracy_tta"], metrics["train_seconds"], machine


def _per_seed(runs, key):
    return [run[key] for run in runs]


def glance_rows():
    """(approach, model and recipe, accuracies and flip-TTA accuracies (one per seed), mean training
    seconds, machine, record)."""
    original = read_record("time_to_accuracy/original_lenet.json")
    versus = read_record(VERSUS_4_SEEDS)
    scratch_accuracy, scratch_tta, scratch_seconds, scratch_machine = _train_folder_row(
        "final-custom_cnn-20ep", "custom_cnn"
    )
    rows = [
        (
            "the original project's recipe",
            "`lenet`, `original` preset, 49 epochs",
            [original["test_accuracy"]],
            [original["test_accuracy_tta"]],
            original["train_seconds"],
            original["machine"],
            "time_to_accuracy/original_lenet.json",
        ),
        (
            "from scratch",
            "`custom_cnn`, defaults, 20 epochs",
            [scratch_accuracy],
            [scratch_tta],
            scratch_seconds,
            scratch_machine,
            "train/final-custom_cnn-20ep/",
        ),
        (
            "from scratch",
            "`fast_cnn`, its recipe (`fast_muon`), 8 epochs",
            _per_seed(versus["our_runs"], "test_accuracy"),
            _per_seed(versus["our_runs"], "test_accuracy_tta"),
            versus["ours"]["train_seconds"],
            versus["machine"],
            VERSUS_4_SEEDS,
        ),
        (
            "reference",
            "airbench94 in PyTorch, same data and CPU",
            _per_seed(versus["reference_runs"], "test_accuracy"),
            _per_seed(versus["reference_runs"], "test_accuracy_tta"),
            versus["reference"]["train_seconds"],
            versus["machine"],
            VERSUS_4_SEEDS,
        ),
    ]
    fine_tune = "1 head + 8 fine-tuning epochs, 64 to 96 px"
    for approach, record, name, label in (
        (
            "transfer, frozen",
            FRONTIER,
            "lite0 frozen 160px 3 depths",
            "Lite0, head on 3 stages' features at 160 px",
        ),
        ("transfer, fine-tuned", FRONTIER, "lite0 fine-tuned 64-96px 1+8 ep", f"Lite0, {fine_tune}"),
        (
            "transfer, fine-tuned",
            FRONTIER_INTEL_AMX,
            "lite2 fine-tuned 64-96px 1+8 ep",
            f"Lite2, {fine_tune}",
        ),
    ):
        point = _frontier_point(name, record)
        rows.append(
            (
                approach,
                f"EfficientNet-{label}",
                [point["test_accuracy"]],
                [point["test_accuracy_tta"]],
                point["train_seconds"],
                read_record(record)["machine"],
                record,
            )
        )
    return rows


def markdown(columns, rows):
    """A markdown table of `columns` and `rows` (lists of cells)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    return "\n".join([*lines, *("| " + " | ".join(map(str, row)) + " |" for row in rows)])


def glance_table():
    """The README's results at a glance."""
    columns = (
        "approach",
        "model, recipe",
        "test accuracy",
        "flip TTA",
        "training time",
        "hardware",
        "record",
    )
    rows = [
        (
            approach,
            name,
            percent_spread(accuracies),
            percent_spread(ttas),
            minutes(seconds),
            hardware(machine),
            f"`{record}`",
        )
        for approach, name, accuracies, ttas, seconds, machine, record in glance_rows()
    ]
    return markdown(columns, rows)


def default_run_table():
    """The default run's record: each model's accuracy and training time, and the whole run's."""
    record = read_record(DEFAULT_RUN)
    rows = [
        (
            f"`{name}`",
            percent(result["test_accuracy"]),
            percent(result["test_accuracy_tta"]),
            minutes(result["train_seconds"]),
        )
        for name, result in record["results"].items()
    ]
    whole = f"**{record['minutes']:.1f} min** (budget {record['budget_minutes']:.0f})"
    table = markdown(
        ("model", "test accuracy", "flip TTA", "training time"),
        [*rows, ("whole run, start to exit", "", "", whole)],
    )
    return f"{table}\n\n{hardware(record['machine'])}, one seed, commit {record['commit']}: `{DEFAULT_RUN}`."


def _describe_run(record):
    overrides = " ".join(f"`{item}`" for item in record.get("overrides") or [])
    preset = f"`{record['preset']}` preset" if record.get("preset") else "defaults"
    return f"`{record['model']}`, {preset}" + (f", {overrides}" if overrides else "")


def _records(folder):
    """(file name, record) of every record in results/`folder`, by name."""
    for path in sorted(glob.glob(os.path.join(RESULTS, folder, "*.json"))):
        yield os.path.basename(path), read_record(os.path.relpath(path, RESULTS))


def time_to_accuracy_table():
    """Every time_to_accuracy record: the run, seeds, accuracies, training time, time to 80%."""
    columns = (
        "record",
        "run",
        "seeds",
        "test accuracy",
        "flip TTA",
        "training time",
        "time to 80%",
        "hardware",
    )
    rows = []
    for name, record in _records("time_to_accuracy"):
        to_80 = record["time_to_accuracy"].get("0.80")
        rows.append(
            (
                f"`{name}`",
                _describe_run(record),
                ", ".join(map(str, record["seeds"])),
                percent_spread(_per_seed(record["runs"], "test_accuracy")),
                percent_spread(_per_seed(record["runs"], "test_accuracy_tta")),
                f"{record['train_seconds']:.0f} s",
                "not reached" if to_80 is None else f"{to_80:.0f} s",
                hardware(record["machine"]),
            )
        )
    return markdown(columns, rows)


def versus_reference_table():
    """Every side-by-side record: reference against ours, accuracy, time and their ratio."""
    columns = (
        "record",
        "ours",
        "seeds",
        "accuracy (mean of the seeds), reference / ours",
        "flip TTA",
        "training time",
        "ratio",
        "hardware",
    )
    rows = []
    for name, record in _records("versus_reference"):
        reference, ours = record["reference"], record["ours"]
        preset = record.get("ours_preset", "fast")  # records from before --preset ran the fast preset
        rows.append(
            (
                f"`{name}`",
                f"`fast_cnn`, `{preset}`",
                ", ".join(map(str, record["seeds"])),
                f"{percent(reference['test_accuracy'])} / {percent(ours['test_accuracy'])}",
                f"{percent(reference['test_accuracy_tta'])} / {percent(ours['test_accuracy_tta'])}",
                f"{reference['train_seconds']:.0f} s / {ours['train_seconds']:.0f} s",
                f"{record['ratio_train_seconds']:.2f}x",
                hardware(record["machine"]),
            )
        )
    return markdown(columns, rows)


def frontier_table(relative=FRONTIER):
    """The points of a budget frontier record: approach, accuracies and training time (one seed each)."""
    record = read_record(relative)
    rows = [
        (
            point["name"],
            point["approach"],
            percent(point["test_accuracy"]),
            percent(point["test_accuracy_tta"]),
            minutes(point["train_seconds"]),
        )
        for point in sorted(record["points"], key=lambda point: point["train_seconds"])
    ]
    table = markdown(("point", "approach", "test accuracy", "flip TTA", "training time"), rows)
    return f"{table}\n\n{hardware(record['machine'])}, one seed per point: `{relative}`."


def train_runs_table():
    """Every committed run folder (train/): each model's accuracies and training time."""
    columns = ("run folder", "model", "epochs", "test accuracy", "flip TTA", "training time", "hardware")
    rows = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "train", "*", "metrics.json"))):
        folder = os.path.basename(os.path.dirname(path))
        machine = read_record(f"train/{folder}/record.json")["machine"]
        for name, row in read_record(f"train/{folder}/metrics.json").items():
            rows.append(
                (
                    f"`{folder}`",
                    f"`{name}`",
                    row["epochs"],
                    percent(row["test_accuracy"]),
                    percent(row.get("test_accuracy_tta")),
                    minutes(row["train_seconds"]),
                    hardware(machine),
                )
            )
    return markdown(columns, rows)


TABLES = {
    "glance": glance_table,
    "default_run": default_run_table,
    "time_to_accuracy": time_to_accuracy_table,
    "versus_reference": versus_reference_table,
    "frontier": frontier_table,
    "frontier_intel_amx": lambda: frontier_table(FRONTIER_INTEL_AMX),
    "train_runs": train_runs_table,
    "args": describe_args_markdown,
}


PAGES = ("README.md", os.path.join("docs", "results.md"), os.path.join("docs", "args.md"))
_BLOCK = re.compile(r"(<!-- table:(\w+) -->\n)(.*?)(<!-- /table -->)", re.S)


def with_fresh_tables(text):
    """`text` with every table block replaced by the table computed now."""
    return _BLOCK.sub(lambda match: f"{match[1]}{TABLES[match[2]]()}\n{match[4]}", text)


def table_names(text):
    return [match[2] for match in _BLOCK.finditer(text)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="refresh the tables in PAGES")
    options = parser.parse_args(argv)
    if not options.write:
        for name, table in TABLES.items():
            print(f"<!-- table:{name} -->\n{table()}\n<!-- /table -->\n")
        return
    for page in PAGES:
        path = os.path.join(ROOT, page)
        with open(path, encoding="utf-8") as handle:
            fresh = with_fresh_tables(handle.read())  # every table first: a missing record writes nothing
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(fresh)


if __name__ == "__main__":
    main()
