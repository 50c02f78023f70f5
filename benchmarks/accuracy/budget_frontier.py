"""Budget frontier: test accuracy against training time of both approaches, one record and figure.

    python -m benchmarks.accuracy.budget_frontier --data PATH \\
        --out benchmarks/results/budget_frontier/budget_frontier.json

Each point is one run of `time_to_accuracy.run_seed` (training time includes data preparation
and feature extraction; the per-epoch test evaluation is not counted) with its own recipe:
from scratch (`fast_cnn` at several epoch counts, `custom_cnn`) and pretrained
EfficientNet-Lite0 and -Lite2 (frozen with cached features at two image sizes and feature depths,
fine-tuned at fixed and progressively raised sizes). The record is rewritten after every point,
so a long run interrupted keeps what it finished; `--points` runs a subset and `--append` adds
points to an existing record made on the same kind of machine. The record says which approach
wins within 5, 15, 30 and 60 minutes and the figure (`--figure`) shows both approaches' fronts.
"""

import argparse
import tempfile

from benchmarks.accuracy.time_to_accuracy import run_seed  # noqa: E402
from benchmarks.common import machine_description, refuse_other_machine, write_record  # noqa: E402
from utils.config.overrides import parse_override  # noqa: E402
from utils.config.resolve import resolve_args  # noqa: E402
from utils.evaluation.frontier import (  # noqa: E402
    APPROACH_OF_PHASE,
    BUDGET_MINUTES,
    frontier_figure,
    winners,
)
from utils.plots import save_figure  # noqa: E402
from utils.runs.folders import read_json  # noqa: E402

FROZEN = {"fine_tune_epochs": 0, "augment_flip": False, "augment_translate": 0, "epochs": 20}
FINE_TUNE = {"epochs": 1, "fine_tune_layers": "all", "fine_tune_lr_factor": 0.2}

# name -> (model, args overrides); every point trains on all 50,000 training images.
POINTS = {
    "fast_cnn 3 ep": ("fast_cnn", {"preset": "fast", "epochs": 3}),
    "fast_cnn 6 ep": ("fast_cnn", {"preset": "fast", "epochs": 6}),
    "fast_cnn 10 ep": ("fast_cnn", {"preset": "fast"}),
    "custom_cnn 10 ep": ("custom_cnn", {"epochs": 10}),
    "lite0 frozen 96px": ("efficientnet_lite0", {**FROZEN, "image_size": 96}),
    "lite0 frozen 96px 3 depths": ("efficientnet_lite0", {**FROZEN, "image_size": 96, "feature_depths": 3}),
    "lite0 frozen 160px 3 depths": ("efficientnet_lite0", {**FROZEN, "image_size": 160, "feature_depths": 3}),
    "lite0 frozen 224px 3 depths": ("efficientnet_lite0", {**FROZEN, "image_size": 224, "feature_depths": 3}),
    "lite2 frozen 160px 3 depths": ("efficientnet_lite2", {**FROZEN, "image_size": 160, "feature_depths": 3}),
    "lite2 frozen 224px 3 depths": ("efficientnet_lite2", {**FROZEN, "image_size": 224, "feature_depths": 3}),
    "lite0 fine-tuned 64px 1+5 ep": (
        "efficientnet_lite0",
        {**FINE_TUNE, "image_size": 64, "fine_tune_epochs": 5},
    ),
    "lite0 fine-tuned 64-96px 1+8 ep": (
        "efficientnet_lite0",
        {**FINE_TUNE, "image_size": 96, "image_size_start": 64, "fine_tune_epochs": 8},
    ),
    "lite2 fine-tuned 64-96px 1+8 ep": (
        "efficientnet_lite2",
        {**FINE_TUNE, "image_size": 96, "image_size_start": 64, "fine_tune_epochs": 8},
    ),
    "lite0 fine-tuned 64-128px 1+9 ep": (
        "efficientnet_lite0",
        {**FINE_TUNE, "image_size": 128, "image_size_start": 64, "fine_tune_epochs": 9},
    ),
}


def point_args(data_path, model, overrides, extra, runs_dir, seed):
    return resolve_args(
        {
            "data_path": data_path,
            "models": [model],
            "val_fraction": 0.0,
            "output_dir": runs_dir,
            "backup_and_restore": False,
            "verbose": 2,
            "seed": seed,
            **overrides,
            **extra,
        }
    )


def run_point(name, args):
    """One point of the record: how it trained, its accuracy and time, its per-epoch curve."""
    run = run_seed(args)
    keys = ("phase", "image_size", "precision", "test_accuracy", "test_accuracy_tta", "train_seconds")
    return {
        "name": name,
        "model": args["models"][0],
        "approach": APPROACH_OF_PHASE[run["phase"]],
        **{key: run[key] for key in keys},
        "feature_seconds": run["feature_seconds"],
        "overrides": {key: value for key, value in POINTS[name][1].items()},
        "epochs": [{k: e[k] for k in ("epoch", "seconds", "test_accuracy")} for e in run["epochs"]],
    }


def parse_command_line(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 archive or folder")
    parser.add_argument("--points", nargs="+", choices=list(POINTS), default=list(POINTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override for every point"
    )
    parser.add_argument("--append", action="store_true", help="add the points to the record at --out")
    parser.add_argument("--out", required=True)
    parser.add_argument("--figure", help="PNG of both approaches' fronts")
    return parser.parse_args(argv)


def write_frontier(path, points, options):
    """Write the frontier of `points` (with each budget's winner) to `path`; returns the record."""
    record = {
        "budgets_minutes": list(BUDGET_MINUTES),
        "seed": options.seed,
        "set": options.set,
        "points": points,
        "winners": winners(points),
        "machine": machine_description(),
    }
    record = write_record(path, record)
    return record


def appendable_points(path):
    """The points of the record at `path` (none if it does not exist), refused when another kind of
    machine made them."""
    record = read_json(path, default={"points": []})
    if record["points"]:
        advice = "--append adds only points of the same kind of machine: write a new --out instead."
        refuse_other_machine(record["machine"], path, advice)
    return record["points"]


def main(argv=None):
    options = parse_command_line(argv)
    extra = dict(parse_override(text) for text in options.set)
    points = appendable_points(options.out) if options.append else []
    with tempfile.TemporaryDirectory() as runs_dir:
        for name in options.points:
            model, overrides = POINTS[name]
            args = point_args(options.data, model, overrides, extra, runs_dir, options.seed)
            points = [point for point in points if point["name"] != name] + [run_point(name, args)]
            record = write_frontier(options.out, points, options)
            print(f"{name}: {100 * points[-1]['test_accuracy']:.2f}% in {points[-1]['train_seconds']:.0f} s")
    if options.figure:
        save_figure(frontier_figure(record), options.figure)
    return record


if __name__ == "__main__":
    main()
