"""Train, test and compare the models headless, with the notebook's steps.

  python train.py                       the default run: fast_cnn against vgg16 (efficientnet_lite0
                                        offline), each on its measured recipe: about 20 minutes on
                                        2 CPU cores
  python train.py --set preset=full     every model at full length (hours on a CPU)
  python train.py --set models=custom_cnn --set epochs=30
  python train.py --config my_run.json --set seed=1
  python train.py --list-args           every args key: default, accepted values, meaning
  python train.py --evaluate RUN        test and analyse an earlier run's models again
  python train.py --report [DIR]        one table (and figure) of every finished run; trains nothing

Each --set KEY=VALUE overrides one args key (VALUE is read as JSON where it parses, so
weights=null or augment_flip=false; models also takes a comma-separated list). --config gives
several at once in a JSON file; --set wins. Every value is checked before any work.

The run writes into <output_dir>/<time stamp>/ (or run_name): args, each model's history,
checkpoints and figures, the comparison and the analysis. Interrupted (Ctrl-C, a lost machine),
the same command resumes it where it stopped. Set TF_CPP_MIN_LOG_LEVEL=0 to see TensorFlow's logs.

Exit status: 0 done; 2 bad input (a key, a value, a missing data set or weights file) or a file
that could not be written, said in one line; 1 an unexpected error, with its traceback.
"""

import argparse
import sys

from utils.config.overrides import add_override_arguments, overrides_from


def parse_command_line(argv):
    """The parsed options (overrides are read later, so that --help and --list-args stay instant)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_override_arguments(parser)
    parser.add_argument("--list-args", action="store_true", help="print every args key and exit")
    parser.add_argument(
        "--evaluate", metavar="RUN_FOLDER", help="test and analyse the models of an earlier run again"
    )
    parser.add_argument(
        "--report",
        nargs="?",
        const="",
        metavar="OUTPUT_DIR",
        help="tabulate every finished run in OUTPUT_DIR (default: args output_dir); trains nothing",
    )
    return parser.parse_args(argv)


def run(options):
    """Do what the options ask for (TensorFlow is imported here, after parsing)."""
    import matplotlib

    matplotlib.use("Agg")
    from utils.runtime.versions import exit_if_unsupported

    exit_if_unsupported()  # an old Python, TensorFlow or Keras: one line, before any work
    from utils.config.resolve import resolve_args
    from utils.evaluation.report import write_report
    from utils.steps import evaluate_run, run_pipeline

    overrides = overrides_from(options)
    if options.report is not None:
        print(write_report(options.report or resolve_args(overrides)["output_dir"]))
    elif options.evaluate:
        evaluate_run(options.evaluate, overrides)
    else:
        run_pipeline(resolve_args(overrides))


def main(argv=None):
    options = parse_command_line(argv)
    if options.list_args:
        from utils.config.settings import describe_args_text

        print(describe_args_text())
        return 0
    from utils.errors import ProjectError

    try:
        run(options)
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
