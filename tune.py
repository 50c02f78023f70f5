"""Search `args` with KerasTuner: `python tune.py --space SPACE.json --set models=custom_cnn`.

Each trial trains the one searched model with the project's pipeline for at most
args['epochs'] epochs (Hyperband gives most trials fewer) and is judged by its best
validation accuracy; the test set is never read. Outputs go to <output_dir>/<run_name>
(default run name: tune-<model>): trials.csv / .md / .png, and best_args.json for
`train.py --config`. Running the same command again resumes an interrupted search. With
KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT set, the same command is
the chief (tuner id "chief": serves the oracle, writes the outputs) or a worker (runs trials).
"""

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")

from utils.runtime.versions import exit_if_unsupported  # noqa: E402

exit_if_unsupported()  # an old Python, TensorFlow or Keras: one line, before any work

from utils.config.overrides import add_override_arguments, overrides_from  # noqa: E402
from utils.config.resolve import resolve_args  # noqa: E402
from utils.errors import ConfigError, ProjectError  # noqa: E402
from utils.runtime.environment import output_root  # noqa: E402
from utils.steps import apply_offline_fallback  # noqa: E402
from utils.tuning.report import write_search_outputs  # noqa: E402
from utils.tuning.search import TUNERS, SearchOptions, is_search_chief, keras_tuner_distributed, search  # noqa: E402
from utils.tuning.spaces import load_space  # noqa: E402

DEFAULT_MODEL = "custom_cnn"


def parse_command_line(argv):
    """(base overrides, space argument, SearchOptions) from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--space",
        help="search space JSON file, or a family of utils/tuning/search_spaces.json (default: the model's)",
    )
    parser.add_argument("--tuner", choices=TUNERS, default="hyperband")
    parser.add_argument("--max-trials", type=int, default=12, help="trials of bayesian and random search")
    parser.add_argument("--factor", type=int, default=3, help="Hyperband's reduction factor")
    parser.add_argument("--hyperband-iterations", type=int, default=1)
    parser.add_argument(
        "--connect-timeout", type=float, default=60.0, help="seconds a worker waits for the chief"
    )
    add_override_arguments(parser)
    options = parser.parse_args(argv)
    overrides = {"models": [DEFAULT_MODEL], **overrides_from(options)}
    search_options = SearchOptions(
        options.tuner,
        options.max_trials,
        options.factor,
        options.hyperband_iterations,
        options.connect_timeout,
    )
    return overrides, options.space, search_options


def searched_model(args):
    if len(args["models"]) != 1:
        raise ConfigError(
            f"tune.py searches one model at a time; args['models'] = {args['models']!r} "
            "(e.g. --set models=custom_cnn)."
        )
    return args["models"][0]


def main(argv=None):
    try:
        overrides, space_argument, options = parse_command_line(argv)
        # as in train.py: offline, a backbone whose ImageNet weights cannot be had is replaced
        args = apply_offline_fallback(resolve_args(overrides))
        overrides["models"] = args["models"]
        model = searched_model(args)
        space = load_space(space_argument, model)
        name = args["run_name"] or f"tune-{model}"
        search_dir = os.path.join(output_root(args["output_dir"], args["mount_drive"]), name)
        tuner = search(overrides, space, options, search_dir)
        if keras_tuner_distributed() and not is_search_chief():
            return 0  # the chief writes the outputs
        table = write_search_outputs(tuner.oracle, space, overrides, search_dir)
        print(table or "No trial has finished.")
        print(f"Search folder: {search_dir}")
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
