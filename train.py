"""Run the notebook's pipeline headless: `python train.py --set epochs=30 --set models=custom_cnn`.

Each `--set KEY=VALUE` overrides one `args` key (VALUE parsed as JSON where possible);
`--config FILE.json` gives several at once (--set wins). The steps are the notebook's.
"""

import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from utils import data as cifar  # noqa: E402
from utils.config import load_config_file, parse_override, resolve_args  # noqa: E402
from utils.environment import flush_drive, output_root, prepare_session  # noqa: E402
from utils.errors import ProjectError  # noqa: E402
from utils.evaluation import evaluate, markdown_table, save_comparison  # noqa: E402
from utils.experiment import build_for_run, make_datasets, save_curves, train_one  # noqa: E402
from utils.plots import overlay_figure, save_figure  # noqa: E402
from utils.runs import open_run  # noqa: E402


def parse_command_line(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="JSON file of args overrides")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override one args key (repeatable)"
    )
    options = parser.parse_args(argv)
    overrides = load_config_file(options.config) if options.config else {}
    overrides.update(parse_override(text) for text in options.set)
    return overrides


def run_pipeline(args):
    """Every step of the notebook, in its order; returns the run folder's path."""
    policy = prepare_session(args)
    run = open_run(args, output_root(args))
    print(f"Run folder: {run.path} ({'resumed' if run.resumed else 'new'}); precision {policy}")
    data = cifar.prepare_data(args)
    print(json.dumps(cifar.describe(data), indent=1))
    datasets = make_datasets(data, args)
    results = []
    for name in args["models"]:
        trained = train_one(build_for_run(name, args), datasets, args, run)
        plt.close(save_curves(trained, run))
        results.append((trained, evaluate(trained, datasets.test)))
    save_figure(overlay_figure([trained for trained, _ in results]), run.file("curves_overlay.png"))
    rows = [row for _, row in results]
    save_comparison(rows, run)
    print(markdown_table(rows))
    flush_drive(args)
    return run.path


def main(argv=None):
    try:
        args = resolve_args(parse_command_line(argv))
        run_pipeline(args)
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
