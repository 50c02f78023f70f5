"""Hyperparameter search over `args` with KerasTuner, each trial run by the project's own pipeline.

The oracle (Hyperband, Bayesian optimisation or random search) proposes values for the keys
of a search space; a trial sets them on the user's overrides and trains the one searched
model with the facade's `train_trial` (so its callbacks, precision and
resuming are those of `train.py`) into `<search folder>/trials/trial_<id>`. The objective is
the best validation accuracy of the trial's epochs on the stratified validation split; the
trial never sees the test set (its data holds no test images). KerasTuner keeps its state in
`<search folder>/keras_tuner`, so the same command resumes an interrupted search, and its
distributed mode (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT) runs
the same command as chief and as workers.
"""

import dataclasses
import os

import grpc
import keras_tuner
import numpy as np

from utils.config.resolve import model_args_without, resolve_args
from utils.data.cifar10 import check_validation_split
from utils.errors import ConfigError, ProjectError, TrainingError, TuningError
from utils.steps import load_data, train_trial
from utils.tuning import TUNERS
from utils.tuning.spaces import apply_values, declare_hyperparameters

OBJECTIVE = "val_accuracy"
TUNER_FOLDER = "keras_tuner"
TRIALS_FOLDER = "trials"
# Trial settings that only say where a trial writes or what it shows.
TRIAL_SETTINGS = {"analysis": False, "tensorboard": False, "mount_drive": False, "verbose": 0}


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    """How the oracle searches: which tuner, how many trials (bayesian, random) or Hyperband's
    reduction factor and iterations; epochs per trial come from args['epochs']."""

    tuner: str = "hyperband"
    max_trials: int = 12
    factor: int = 3
    hyperband_iterations: int = 1
    connect_timeout: float = 60.0

    def __post_init__(self):
        if self.tuner not in TUNERS:
            raise ConfigError(f"Tuner {self.tuner!r} is not accepted: expected one of {', '.join(TUNERS)}.")
        for name, lowest in (("max_trials", 1), ("factor", 2), ("hyperband_iterations", 1)):
            if getattr(self, name) < lowest:
                raise ConfigError(
                    f"{name} = {getattr(self, name)} is not accepted: expected at least {lowest}."
                )
        if self.connect_timeout <= 0:
            raise ConfigError(
                f"connect_timeout = {self.connect_timeout} is not accepted: expected seconds > 0."
            )


def make_oracle(options, space, max_epochs, seed):
    """The KerasTuner oracle `options.tuner` names, over the hyperparameters of `space`."""
    common = {
        "objective": keras_tuner.Objective(OBJECTIVE, direction="max"),
        "hyperparameters": declare_hyperparameters(space),
        "tune_new_entries": False,
        "allow_new_entries": False,
        "seed": seed,
    }
    if options.tuner == "hyperband":
        if max_epochs < options.factor:
            raise ConfigError(
                f"Hyperband needs args['epochs'] >= its factor {options.factor} (got {max_epochs}): "
                "trials train between epochs / factor**k and epochs epochs."
            )
        return keras_tuner.oracles.HyperbandOracle(
            max_epochs=max_epochs,
            factor=options.factor,
            hyperband_iterations=options.hyperband_iterations,
            **common,
        )
    if options.tuner == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(max_trials=options.max_trials, **common)
    return keras_tuner.oracles.RandomSearchOracle(max_trials=options.max_trials, **common)


class PipelineTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """Runs each trial through the project's pipeline; its results go to the oracle as
    val_accuracy (the objective), epochs and train_seconds."""

    def __init__(self, oracle, base_overrides, search_dir, **kwargs):
        super().__init__(oracle, directory=search_dir, project_name=TUNER_FOLDER, **kwargs)
        self.base_overrides = base_overrides
        self.search_dir = search_dir
        self._data = None

    def trial_args(self, trial):
        """The args of one trial: the user's overrides, the trial's values and its epoch budget
        (Hyperband's, when it gives one), written to the trial's own folder."""
        values = trial.hyperparameters.values
        overrides = apply_values(self.base_overrides, values)
        trial_keys = {key for key in values if not key.startswith("tuner/")}
        if "tuner/epochs" in values:
            overrides["epochs"] = values["tuner/epochs"]
            trial_keys.add("epochs")
        # What the trial sets holds for the searched model too, whatever its model_args entry says.
        overrides["model_args"] = model_args_without(overrides.get("model_args"), trial_keys)
        return resolve_args(
            {
                **overrides,
                **TRIAL_SETTINGS,
                "output_dir": os.path.join(self.search_dir, TRIALS_FOLDER),
                "run_name": f"trial_{trial.trial_id}",
            }
        )

    def run_trial(self, trial, *fit_args, **fit_kwargs):
        try:
            args = self.trial_args(trial)
            if self._data is None:  # loaded once per process, by the first trial
                self._data = load_data(args, with_test=False)
            trained = train_trial(args, self._data)
        except TrainingError as error:  # e.g. a learning rate that makes the loss NaN
            raise keras_tuner.errors.FailedTrialError(str(error)) from error
        except ProjectError as error:
            raise keras_tuner.errors.FatalError(str(error)) from error
        return {
            OBJECTIVE: float(np.nanmax(trained.history[OBJECTIVE])),
            "epochs": float(len(trained.history["epoch"])),
            "train_seconds": trained.train_seconds,
        }


def check_chief_reachable(timeout):
    """In a distributed search, a worker first checks that the chief oracle answers.

    KerasTuner's client waits up to an hour for the chief; this fails within `timeout` seconds.

    Raises:
        TuningError: naming the address, when the chief does not answer in time.
    """
    if not keras_tuner_distributed() or is_search_chief():
        return
    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    with grpc.insecure_channel(address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise TuningError(
                f"Worker {os.environ['KERASTUNER_TUNER_ID']!r} could not reach the chief oracle at "
                f"{address} within {timeout:g} s. Start the chief first (the same command with "
                "KERASTUNER_TUNER_ID=chief) and check KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT."
            ) from None


def keras_tuner_distributed():
    """Whether KerasTuner's distributed-mode variables are set (all three are then required)."""
    names = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
    present = [name for name in names if name in os.environ]
    if present and len(present) < len(names):
        raise TuningError(
            f"Distributed search needs all of {', '.join(names)}; only {', '.join(present)} is set."
        )
    return bool(present)


def is_search_chief():
    """Whether this process is the chief of a distributed search (serves the oracle, writes the
    outputs); `utils.runtime.distribution.is_chief` is the training counterpart."""
    return keras_tuner_distributed() and "chief" in os.environ["KERASTUNER_TUNER_ID"]


def search(base_overrides, space, options, search_dir):
    """Run (or resume) the search; returns the tuner, whose oracle holds every trial on the chief
    or in a single-process search.

    Raises:
        ConfigError, TuningError: before any trial, for args or a space a search cannot use, or
            an unreachable chief; TuningError when a trial hits a user mistake (a FatalError to
            KerasTuner, which stops the search).
    """
    args = resolve_args(base_overrides)
    check_validation_split(args["val_fraction"])
    check_chief_reachable(options.connect_timeout)
    oracle = make_oracle(options, space, args["epochs"], args["seed"])
    tuner = PipelineTuner(oracle, base_overrides, search_dir)
    try:
        tuner.search()
    except keras_tuner.errors.FatalError as error:
        raise TuningError(f"The search stopped: {error}") from error
    return tuner
