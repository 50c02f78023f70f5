"""Search args with KerasTuner for one model, judged by validation accuracy; the test set is never read.

  python tune.py                                  Hyperband over custom_cnn's space
  python tune.py --set models=fast_cnn --set preset=fast
  python tune.py --space my_space.json --tuner bayesian --max-trials 20 --set epochs=5
  python train.py --config runs/tune-custom_cnn/best_args.json      then train the best args found

Each trial trains the searched model with the project's pipeline for at most args['epochs'] epochs
(Hyperband gives most trials fewer) and is judged by its best validation accuracy. The space is a
JSON file of args keys and their ranges, or a family of utils/tuning/search_spaces.json (default:
the model's own). Outputs go to <output_dir>/<run_name> (default run name: tune-<model>):
trials.csv / .md / .png, and best_args.json for `train.py --config`. Running the same command again
resumes an interrupted search; --set overrides the args every trial starts from.

Distributed search: with KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT set,
the same command is the chief (tuner id "chief": serves the oracle, writes the outputs) or a
worker (any other id: runs trials); start the chief first.

Exit status: 0 done; 2 bad input (a key, a value, a space file, a tuner option) said in one line;
1 an unexpected error, with its traceback.
"""

import argparse
import os
import sys

from utils.config.overrides import add_override_arguments, overrides_from
from utils.errors import ConfigError
from utils.tuning import TUNERS

DEFAULT_MODEL = "custom_cnn"


def parse_command_line(argv):
    """The parsed options (TensorFlow and KerasTuner are imported after parsing)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--space",
        help="search space JSON file, or a family of utils/tuning/search_spaces.json (default: the model's)",
    )
    parser.add_argument("--tuner", choices=TUNERS, default="hyperband", help="the search algorithm")
    parser.add_argument("--max-trials", type=int, default=12, help="trials of bayesian and random search")
    parser.add_argument("--factor", type=int, default=3, help="Hyperband's reduction factor")
    parser.add_argument(
        "--hyperband-iterations",
        type=int,
        default=1,
        help="how many times Hyperband runs its whole bracket schedule",
    )
    parser.add_argument(
        "--connect-timeout", type=float, default=60.0, help="seconds a worker waits for the chief"
    )
    add_override_arguments(parser)
    return parser.parse_args(argv)


def searched_model(args):
    if len(args["models"]) != 1:
        raise ConfigError(
            f"tune.py searches one model at a time; args['models'] = {args['models']!r} "
            "(e.g. --set models=custom_cnn)."
        )
    return args["models"][0]


def main(argv=None):
    options = parse_command_line(argv)
    import matplotlib

    matplotlib.use("Agg")
    from utils.runtime.versions import exit_if_unsupported

    exit_if_unsupported()  # an old Python, TensorFlow or Keras: one line, before any work
    from utils.errors import ProjectError

    try:
        return run_search(options)
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def run_search(options):
    """Search as the options ask; the chief (or a lone search) writes and prints the outputs."""
    from utils.config.resolve import resolve_args
    from utils.runtime.environment import output_root
    from utils.steps import apply_offline_fallback
    from utils.tuning.report import write_search_outputs
    from utils.tuning.search import SearchOptions, is_search_chief, keras_tuner_distributed, search
    from utils.tuning.spaces import load_space

    overrides = {"models": [DEFAULT_MODEL], **overrides_from(options)}
    search_options = SearchOptions(
        options.tuner,
        options.max_trials,
        options.factor,
        options.hyperband_iterations,
        options.connect_timeout,
    )
    # as in train.py: offline, a backbone whose ImageNet weights cannot be had is replaced
    args = apply_offline_fallback(resolve_args(overrides))
    overrides["models"] = args["models"]
    model = searched_model(args)
    space = load_space(options.space, model)
    name = args["run_name"] or f"tune-{model}"
    search_dir = os.path.join(output_root(args["output_dir"], args["mount_drive"]), name)
    tuner = search(overrides, space, search_options, search_dir)
    if keras_tuner_distributed() and not is_search_chief():
        return 0  # the chief writes the outputs
    table = write_search_outputs(tuner.oracle, space, overrides, search_dir)
    print(table or "No trial has finished.")
    print(f"Search folder: {search_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
