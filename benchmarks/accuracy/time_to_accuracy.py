"""Time-to-accuracy benchmark: train one model per seed and write a JSON record.

    python -m benchmarks.accuracy.time_to_accuracy --data PATH --model fast_cnn --preset fast \\
        --seeds 0 1 --out benchmarks/results/time_to_accuracy/fast_cnn.json

Each epoch's wall time, training loss, validation accuracy and test accuracy are
recorded; the per-epoch test evaluation is timed apart and not counted as training.
Training time includes data preparation (loading, splitting, pipelines, fitted layers).
The record's top-level keys are the same for every benchmark of this project.
"""

import argparse
import os
import resource
import tempfile
import time

import numpy as np

import utils  # noqa: E402, F401  (first: it sets TensorFlow's flags before TensorFlow loads)

# isort: split
import keras  # noqa: E402

from benchmarks.common import (  # noqa: E402
    THRESHOLDS,
    machine_description,
    refuse_other_machine,
    time_to_accuracy,
    write_record,
)
from models import parts  # noqa: E402
from utils.config.overrides import parse_override  # noqa: E402
from utils.config.resolve import args_for_model, resolve_args  # noqa: E402
from utils.data import cifar10 as cifar  # noqa: E402
from utils.data.features import feature_split  # noqa: E402
from utils.data.pipeline import make_dataset  # noqa: E402
from utils.evaluation.test_set import evaluate, forward_passes, loss_and_accuracy  # noqa: E402
from utils.runs.folders import open_run, read_json  # noqa: E402
from utils.steps import (  # noqa: E402
    build_for_run,
    load_data,
    make_datasets,
    start_session,  # noqa: E402
    train_one,
)
from utils.training.loop import STATE_FILE  # noqa: E402

BUDGETS = ("300", "600", "1800")  # seconds of training, for equal-budget comparisons


class TestAccuracyPerEpoch(keras.callbacks.Callback):
    """Measures the test accuracy (plain and with flip TTA) after every epoch, timing itself apart
    from training.

    While a phase fits only the head on cached backbone features, the head is measured on
    the test images' cached features (extracted once, outside the training time), which
    gives the whole network's accuracy without running the backbone every epoch.
    """

    def __init__(self, model, test_dataset, test_split, args):
        super().__init__()
        self.full_model = model
        self.test_dataset = test_dataset
        self.test_split = test_split
        self.cache_dir = args["feature_cache_dir"]
        self.batch_size = args["batch_size"]
        self.test_features = None
        self.epochs = []
        self.eval_seconds = 0.0

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        if self.model is self.full_model:
            plain, mirrored, labels = forward_passes(self.model, self.test_dataset, mirror=True)
            _, accuracy_tta = loss_and_accuracy((plain + mirrored) / 2, labels)
        else:  # cached features have no mirror images
            plain, _, labels = forward_passes(self.model, self.test_feature_dataset(), False)
            accuracy_tta = None
        _, accuracy = loss_and_accuracy(plain, labels)
        self.eval_seconds += time.perf_counter() - start
        self.epochs.append(
            {
                "epoch": epoch,
                "seconds": logs["epoch_seconds"],
                "train_loss": logs["loss"],
                "val_accuracy": logs.get("val_accuracy"),
                "test_accuracy": accuracy,
                "test_accuracy_tta": accuracy_tta,
            }
        )

    def test_feature_dataset(self):
        """The test set's cached backbone features as a dataset, extracted on first use."""
        if self.test_features is None:
            features = feature_split(self.full_model, self.test_split, self.cache_dir, self.batch_size)
            self.test_features = make_dataset(features, self.batch_size, training=False)
        return self.test_features


class StopAfterSeconds(keras.callbacks.Callback):
    """Ends training after the first epoch that finishes past `limit` seconds (counting `already`)."""

    def __init__(self, limit, already):
        super().__init__()
        self.limit = limit
        self.elapsed = already

    def on_epoch_end(self, epoch, logs=None):
        self.elapsed += logs["epoch_seconds"]
        if self.elapsed >= self.limit:
            self.model.stop_training = True


def accuracy_within(epochs, start_seconds):
    """Test accuracy of the last epoch finished within each budget of training seconds (None: none was).

    `start_seconds`: time spent before the first epoch (data preparation, feature extraction).
    """
    reached, elapsed = dict.fromkeys(BUDGETS), start_seconds
    for epoch in epochs:
        elapsed += epoch["seconds"]
        for budget in BUDGETS:
            if elapsed <= float(budget):
                reached[budget] = epoch["test_accuracy"]
    return reached


def run_seed(args, time_limit=None):
    """Train and evaluate one seed (stopping after `time_limit` seconds if given); returns its record.

    Backbone features go to a cache of the run's own, deleted after it (not
    args['feature_cache_dir']): features cached by an earlier run would hide their extraction time.
    """
    with tempfile.TemporaryDirectory(prefix="features-") as cache:
        return _timed_run({**args, "feature_cache_dir": cache}, time_limit)


def _timed_run(args, time_limit):
    start = time.perf_counter()
    start_session(args)
    data = load_data(args)
    datasets = make_datasets(data, args)
    model = build_for_run(args["models"][0], args)
    data_seconds = time.perf_counter() - start
    monitor = TestAccuracyPerEpoch(model, datasets.test, data.test, args)
    run = open_run(args["output_dir"], args, args["run_name"])
    stop = [StopAfterSeconds(time_limit, data_seconds)] if time_limit else []
    trained = train_one(model, datasets, args, run, [monitor, *stop])
    row = evaluate(trained, datasets.test)
    train_seconds = data_seconds + trained.train_seconds
    state = read_json(os.path.join(run.model_dir(model.name), STATE_FILE))
    feature_seconds = state["phases"]["train"].get("feature_seconds")
    before_first_epoch = data_seconds + (feature_seconds or 0.0)  # features come before the head's epochs
    return {
        "seed": args["seed"],
        "phase": training_phase(model, trained),
        "image_size": args_for_model(args, model.name)["image_size"]
        if parts.has_backbone(model)
        else cifar.IMAGE_SHAPE[0],
        "feature_seconds": feature_seconds,
        "precision": model.dtype_policy.name,  # the model's own (build_for_run), not the session's
        "test_accuracy": row["test_accuracy"],
        "test_accuracy_tta": row["test_accuracy_tta"],
        "test_loss": row["test_loss"],
        "train_seconds": round(train_seconds, 1),
        "data_seconds": round(data_seconds, 1),
        "eval_seconds": row["eval_seconds"],
        "per_epoch_test_eval_seconds": round(monitor.eval_seconds, 1),
        "train_images": len(data.train),
        "images_per_second_train": round(len(data.train) * len(monitor.epochs) / trained.train_seconds, 1),
        "images_per_second_inference": round(2 * len(data.test) / max(row["eval_seconds"], 1e-9), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "time_to_accuracy": time_to_accuracy(monitor.epochs, before_first_epoch),
        "accuracy_within_seconds": accuracy_within(monitor.epochs, before_first_epoch),
        "epochs": monitor.epochs,
        "run_folder": run.path,
    }


def training_phase(model, trained):
    """ "scratch" for a from-scratch model; for a pretrained one "frozen" or "finetune"."""
    if not parts.has_backbone(model):
        return "scratch"
    return "frozen" if trained.fine_tune_start_epoch is None else "finetune"


def mean_or_none(values):
    """The mean, or None when any value is None (a threshold one seed never reached)."""
    return None if any(v is None for v in values) else round(float(np.mean(values)), 4)


def summarize(model, preset, runs, args, overrides):
    """The record: comparable top-level keys, then every run in full."""
    return {
        "model": model,
        "preset": preset,
        "seeds": [run["seed"] for run in runs],
        "test_accuracy": mean_or_none([run["test_accuracy"] for run in runs]),
        "test_accuracy_tta": mean_or_none([run["test_accuracy_tta"] for run in runs]),
        "train_seconds": mean_or_none([run["train_seconds"] for run in runs]),
        "time_to_accuracy": {
            t: mean_or_none([run["time_to_accuracy"][t] for run in runs]) for t in THRESHOLDS
        },
        "accuracy_within_seconds": {
            b: mean_or_none([run["accuracy_within_seconds"][b] for run in runs]) for b in BUDGETS
        },
        "machine": machine_description(),
        "overrides": overrides,
        "phase": runs[0]["phase"],
        "image_size": runs[0]["image_size"],
        "feature_seconds": mean_or_none([run["feature_seconds"] for run in runs]),
        "args": args,
        "runs": runs,
    }


def parse_command_line(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="CIFAR-10 archive or folder (default: CIFAR10_DATA or download)")
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--preset", help="args preset, e.g. fast or original")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", required=True, help="JSON record to write")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra args override")
    parser.add_argument("--runs-dir", default=os.path.join("runs", "benchmarks"), help="run folders go here")
    parser.add_argument("--time-limit", type=float, help="stop each run after the epoch that passes it (s)")
    parser.add_argument("--append", action="store_true", help="add these seeds' runs to the record at --out")
    parser.add_argument("--tiny", action="store_true", help="small_run data and one epoch (for tests)")
    return parser.parse_args(argv)


def earlier_runs(options):
    """The runs of the record at `--out`, which more seeds are being added to.

    Raises:
        SystemExit: when that record is of another model, preset, set of overrides or kind of
            machine, or already holds one of the seeds.
    """
    if not os.path.isfile(options.out):
        return []
    record = read_json(options.out)
    refuse_other_machine(record["machine"], options.out, "--append adds seeds of the same kind only.")
    previous = (record["model"], record["preset"], record.get("overrides"))
    if previous != (options.model, options.preset, options.set):
        raise SystemExit(
            f"--append: {options.out} holds {previous}, not {(options.model, options.preset, options.set)}"
        )
    repeated = set(record["seeds"]) & set(options.seeds)
    if repeated:
        raise SystemExit(f"--append: {options.out} already has seeds {sorted(repeated)}")
    return record["runs"]


def main(argv=None):
    options = parse_command_line(argv)
    overrides = {
        "preset": options.preset,
        "data_path": options.data,
        "models": [options.model],
        "output_dir": options.runs_dir,
        "backup_and_restore": False,
        "verbose": 2,
        "small_run": options.tiny,
        **dict(parse_override(text) for text in options.set),
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs = earlier_runs(options) if options.append else []
    for seed in options.seeds:
        run_name = f"{options.model}-{options.preset or 'defaults'}-seed{seed}-{stamp}"
        args = resolve_args({**overrides, "seed": seed, "run_name": run_name})
        runs.append(run_seed(args, options.time_limit))
    seeds = [run["seed"] for run in runs]
    run_args = {**args, "seed": seeds, "run_name": None}
    record = summarize(options.model, options.preset, runs, run_args, options.set)
    record = write_record(options.out, record)
    tta, accuracy = record["test_accuracy_tta"], record["test_accuracy"]
    print(
        f"{options.model} ({options.preset or 'defaults'}), seeds {seeds}: test accuracy "
        f"{100 * accuracy:.2f}% ({100 * tta:.2f}% with flip TTA), {record['train_seconds']:.0f} s "
        f"training, time to 80/90/93/94%: {list(record['time_to_accuracy'].values())}"
    )
    return record


if __name__ == "__main__":
    main()
