"""Run the notebook's pipeline headless: `python train.py --set epochs=30 --set models=custom_cnn`.

Each `--set KEY=VALUE` overrides one `args` key (VALUE parsed as JSON where possible);
`--config FILE.json` gives several at once (--set wins). The steps are the notebook's.
`--evaluate RUN` tests and analyses an earlier run's models again; `--report [OUTPUT_DIR]`
tabulates every finished run without retraining.
"""

import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")

from utils.runtime.versions import exit_if_unsupported  # noqa: E402

exit_if_unsupported()  # an old Python, TensorFlow or Keras: one line, before any work

import matplotlib.pyplot as plt  # noqa: E402

from utils.analysis.summary import compare_analyses  # noqa: E402
from utils.config.overrides import add_override_arguments, overrides_from  # noqa: E402
from utils.config.resolve import resolve_args  # noqa: E402
from utils.data import cifar10 as cifar  # noqa: E402
from utils.errors import ProjectError  # noqa: E402
from utils.evaluation.report import write_report  # noqa: E402
from utils.evaluation.test_set import evaluate_and_predict, markdown_table, save_comparison  # noqa: E402
from utils.plots import overlay_figure, save_figure  # noqa: E402
from utils.runs.folders import RunFolder, open_run, read_run_args  # noqa: E402
from utils.runtime.distribution import describe_distribution, is_chief, worker_output_dir  # noqa: E402
from utils.runtime.environment import download_folder, flush_drive, output_root, prepare_session  # noqa: E402
from utils.steps import (  # noqa: E402
    analyse_trained,
    apply_offline_fallback,
    build_for_run,
    load_run_models,
    make_datasets,
    models_for_testing,
    save_curves,
    train_one,
)


def parse_command_line(argv):
    """(overrides dict, parsed options) from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_override_arguments(parser)
    parser.add_argument("--evaluate", metavar="RUN_FOLDER", help="only test the models of an earlier run")
    parser.add_argument(
        "--report",
        nargs="?",
        const="",
        metavar="OUTPUT_DIR",
        help="tabulate every finished run in OUTPUT_DIR (default: args output_dir); trains nothing",
    )
    options = parser.parse_args(argv)
    return overrides_from(options), options


def evaluate_and_analyse(trained_models, datasets, run, args):
    """Evaluate on the test set and, if args ask, analyse each model; save the comparison, the
    analysis and the overlay figure, print the tables. metrics.json, written last, marks the
    run finished, so an interruption before it repeats this step on resuming."""
    rows, summaries = [], []
    for trained in trained_models:
        row, test_probabilities = evaluate_and_predict(trained, datasets.test)
        rows.append(row)
        if args["analysis"]:
            summaries.append(analyse_trained(trained, datasets.data, run, args, test_probabilities))
    save_figure(overlay_figure(trained_models), run.file("curves_overlay.png"))
    if summaries:
        print(compare_analyses(summaries, datasets.data.class_names, run))
    save_comparison(rows, run)
    print(markdown_table(rows))


def run_pipeline(args):
    """Every step of the notebook, in its order; returns the run folder's path. In a multi-worker
    run, every worker trains; the chief alone tests and analyses, on the saved models."""
    args = apply_offline_fallback(args)
    policy = prepare_session(args)
    run = open_run(args, worker_output_dir(args) or output_root(args))
    print(f"Run folder: {run.path} ({'resumed' if run.resumed else 'new'}); default precision {policy}")
    print(describe_distribution(args))
    data = cifar.prepare_data(args, download_folder(args))
    print(json.dumps(cifar.describe(data), indent=1))
    datasets = make_datasets(data, args)
    built = [build_for_run(name, args) for name in args["models"]]  # missing weights fail before training
    for model in built:
        own = args["model_args"].get(model.name)
        print(
            f"{model.name}: {model.count_params():,} parameters, precision {model.dtype_policy.name}"
            + (f", its own args {own}" if own else "")
        )
    trained_models = []
    for model in built:
        trained_models.append(train_one(model, datasets, args, run))
        plt.close(save_curves(trained_models[-1], run))
    if not is_chief(args):
        return run.path
    evaluate_and_analyse(models_for_testing(trained_models, run.path, args), datasets, run, args)
    flush_drive(args)
    return run.path


def evaluate_run(run_path, overrides):
    """Test the models of an earlier run (its args, plus overrides such as data_path)."""
    args = resolve_args({**read_run_args(run_path), **overrides})
    prepare_session(args)
    datasets = make_datasets(cifar.prepare_data(args), args)
    evaluate_and_analyse(load_run_models(run_path), datasets, RunFolder(run_path, resumed=True), args)


def main(argv=None):
    try:
        overrides, options = parse_command_line(argv)
        if options.report is not None:
            print(write_report(options.report or resolve_args(overrides)["output_dir"]))
        elif options.evaluate:
            evaluate_run(options.evaluate, overrides)
        else:
            run_pipeline(resolve_args(overrides))
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file the run writes: disk full, folder removed, no permission
        print(
            f"error: could not write {error.filename or 'a file'}: {error.strerror or error}", file=sys.stderr
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
