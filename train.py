"""Run the notebook's pipeline headless: `python train.py --set epochs=30 --set models=custom_cnn`.

Each `--set KEY=VALUE` overrides one `args` key (VALUE parsed as JSON where possible);
`--config FILE.json` gives several at once (--set wins). The steps are the notebook's.
`--evaluate RUN` tests and analyses an earlier run's models again; `--report [OUTPUT_DIR]`
tabulates every finished run without retraining.
"""

import argparse
import sys

import matplotlib

matplotlib.use("Agg")

from utils.runtime.versions import exit_if_unsupported  # noqa: E402

exit_if_unsupported()  # an old Python, TensorFlow or Keras: one line, before any work

from utils.config.overrides import add_override_arguments, overrides_from  # noqa: E402
from utils.config.resolve import resolve_args  # noqa: E402
from utils.errors import ProjectError  # noqa: E402
from utils.evaluation.report import write_report  # noqa: E402
from utils.steps import evaluate_run, run_pipeline  # noqa: E402


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
