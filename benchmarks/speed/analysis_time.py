"""Analysis benchmark: the whole analysis of each model of finished runs, timed, as one JSON record.

    python -m benchmarks.speed.analysis_time --data PATH --runs runs/fast runs/custom \\
        --out benchmarks/results/analysis_time/analysis_full.json [--compare-dir FOLDER]

For every model of every run folder (trained by train.py or the notebook), the analysis of
`utils.analysis.summary` runs on the run's test set, from its own forward pass (nothing reused from
evaluation), and writes its tables and figures into the run folder as train.py does. The
record has each model's time per part against the budget, and its findings: top-1/top-3
accuracy, per-class F1, ECE and NLL before and after temperature scaling, and accuracy under
every corruption. `--compare-dir` also writes the table and figures that put all analysed models
side by side (analysis.md, per_class_f1.png, robustness.png), as a run folder has for its models.
"""

import argparse
import os
import resource

from benchmarks.common import machine_description, write_record  # noqa: E402
from utils.analysis.summary import compare_analyses  # noqa: E402
from utils.config.overrides import parse_override  # noqa: E402
from utils.config.resolve import resolve_args  # noqa: E402
from utils.data import cifar10 as cifar  # noqa: E402
from utils.runs.folders import RunFolder, read_json, read_run_args  # noqa: E402
from utils.steps import (  # noqa: E402
    analyse_trained,
    load_data,
    load_run_models,
    start_session,  # noqa: E402
)

BUDGET_SECONDS = 120  # the whole analysis of one model on the 10,000 test images


def parse_command_line(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 archive or folder the runs were trained on")
    parser.add_argument("--runs", nargs="+", required=True, help="finished run folders")
    parser.add_argument("--out", required=True, help="JSON record to write")
    parser.add_argument("--compare-dir", help="folder for the side-by-side table and figures of all models")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="args override on top of each run's args, e.g. robustness_per_class=null",
    )
    return parser.parse_args(argv)


def findings(summary):
    """What a reader of the record needs from one analysis (the confusion matrix left out)."""
    per_class = summary["per_class"]
    return {
        "top1_accuracy": per_class["top1_accuracy"],
        "top3_accuracy": per_class["top3_accuracy"],
        "f1": per_class["f1"],
        "most_confused": per_class["most_confused"],
        "calibration": summary["calibration"],
        "robustness": summary["robustness"],
        "gradcam": summary["gradcam"],
    }


def analyse_run(run_path, data_path, overrides):
    """Timed analysis of every model of one finished run: (record entries, summaries)."""
    args = resolve_args({**read_run_args(run_path), "data_path": data_path, **overrides})
    policy = start_session(args)
    data = load_data(args)
    run = RunFolder(run_path, resumed=True)
    metrics = read_json(run.file("metrics.json"), default={})
    results, summaries = [], []
    for trained in load_run_models(run_path):
        summary = analyse_trained(trained, data, run, args)
        summaries.append(summary)
        results.append(
            {
                "model": trained.name,
                "run": os.path.basename(os.path.normpath(run_path)),
                "preset": args["preset"],
                "epochs": len(trained.history.get("epoch", [])),
                "train_images": len(data.train),
                "validation_images": 0 if data.validation is None else len(data.validation),
                "test_images": len(data.test),
                "precision": str(policy),
                "batch_size": args["batch_size"],
                "robustness_per_class": args["robustness_per_class"],
                "test_accuracy_at_evaluation": metrics.get(trained.name, {}).get("test_accuracy"),
                "seconds": summary["seconds"],
                "within_budget": summary["seconds"]["total"] <= BUDGET_SECONDS,
                **findings(summary),
            }
        )
        print(f"{trained.name}: analysis in {summary['seconds']['total']:.1f} s {summary['seconds']}")
    return results, summaries


def main(argv=None):
    options = parse_command_line(argv)
    overrides = dict(parse_override(text) for text in options.set)
    analysed = [analyse_run(run, options.data, overrides) for run in options.runs]
    models = [result for results, _ in analysed for result in results]
    if options.compare_dir:
        os.makedirs(options.compare_dir, exist_ok=True)
        summaries = [summary for _, run_summaries in analysed for summary in run_summaries]
        print(compare_analyses(summaries, cifar.CLASS_NAMES, RunFolder(options.compare_dir, resumed=False)))
    record = {
        "budget_seconds": BUDGET_SECONDS,
        "overrides": overrides,
        "models": models,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": machine_description(),
    }
    record = write_record(options.out, record)
    return record


if __name__ == "__main__":
    main()
