"""GPU check: every path a Colab GPU user takes, with precision and XLA on "auto", in one record.

    python -m benchmarks.speed.gpu_check --data PATH --out benchmarks/results/gpu_check/gpu_check.json

Paths, each timed end to end and read back from its run folder (test accuracy, training time and
training images/s per model):
- notebook: the notebook top to bottom with small_run (papermill);
- default_models: train.py's default models for one epoch each on the full data;
- fast_muon: fast_cnn with the fast_muon preset, its 8 epochs on all 50,000 training images;
- lite0_recipe: EfficientNet-Lite0's recipe with one fine-tuning epoch.
The record names the device (GPU model, or none), the Python / TensorFlow / Keras versions, and
the precision policy and XLA choice each path ran with. `--tiny` runs every path on 15 images per
class for one epoch, on CPU too (the test suite does).
"""

import argparse
import os
import tempfile
import time

import utils  # noqa: E402, F401  (first: it sets TensorFlow's flags before TensorFlow loads)

# isort: split

from benchmarks.common import ROOT, machine_description, write_record  # noqa: E402
from models.registry import model_entry  # noqa: E402
from utils.config.resolve import resolve_args  # noqa: E402
from utils.runs.folders import read_history, read_json  # noqa: E402
from utils.runtime.environment import choose_jit_compile, choose_precision, describe_runtime  # noqa: E402
from utils.steps import (
    load_data,  # noqa: E402
    run_pipeline,  # noqa: E402
)

NOTEBOOK = os.path.join(ROOT, "image_classification_main.ipynb")

PATHS = {
    "notebook": {"small_run": True},
    "default_models": {"epochs": 1, "fine_tune_epochs": 0},
    "fast_muon": {"preset": "fast_muon", "models": ["fast_cnn"], "val_fraction": 0},
    "lite0_recipe": {
        "models": ["efficientnet_lite0"],
        "model_args": {"efficientnet_lite0": {"fine_tune_epochs": 1}},
    },
}
TINY = {"small_run": True, "epochs": 1, "fine_tune_epochs": 1, "batch_size": 32, "weights": None}


def path_overrides(name, data, output_dir, tiny):
    """The args overrides of one path (every path on tiny data with `tiny`)."""
    overrides = {**PATHS[name], "data_path": data, "output_dir": output_dir, "verbose": 0}
    if tiny:
        overrides.update(TINY)
        overrides.pop("model_args", None)
    return overrides


def run_notebook(overrides):
    import papermill

    with tempfile.TemporaryDirectory() as folder:
        papermill.execute_notebook(
            NOTEBOOK,
            os.path.join(folder, "executed.ipynb"),
            parameters={"overrides": overrides},
            cwd=ROOT,
            kernel_name="python3",
            progress_bar=False,
        )


def model_results(run_path, train_images):
    """{model: test accuracy, training seconds, training images/s, epochs, precision} of a run."""
    results = {}
    for name, row in read_json(os.path.join(run_path, "metrics.json")).items():
        history = read_history(os.path.join(run_path, name, "history.csv"))
        seconds = sum(history["epoch_seconds"])
        results[name] = {
            "test_accuracy": row["test_accuracy"],
            "train_seconds": seconds,
            "epochs": len(history["epoch"]),
            "train_images_per_second": train_images * len(history["epoch"]) / seconds,
            "precision": choose_precision("auto", model_entry(name).cpu_float32),
        }
    return results


def check_path(name, data, output_dir, tiny):
    overrides = path_overrides(name, data, output_dir, tiny)
    args = resolve_args(overrides)
    start = time.perf_counter()
    if name == "notebook":
        run_notebook(overrides)
    else:
        run_pipeline(args)
    seconds = time.perf_counter() - start
    (run,) = os.listdir(output_dir)
    train_images = len(load_data(args).train)
    return {
        "seconds": seconds,
        "overrides": overrides,
        "jit_compile": choose_jit_compile(args["jit_compile"]),
        "models": model_results(os.path.join(output_dir, run), train_images),
    }


def parse_command_line(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="cifar-10-python.tar.gz or its extracted folder")
    parser.add_argument("--out", required=True, help="the JSON record to write")
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS), help="a subset")
    parser.add_argument("--tiny", action="store_true", help="15 images per class, one epoch (CPU, tests)")
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_command_line(argv)
    record = {
        "runtime": describe_runtime(),
        "machine": machine_description(),
        "tiny": options.tiny,
        "paths": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        for name in options.paths:
            print(f"--- {name} ---", flush=True)
            output_dir = os.path.join(folder, name)
            record["paths"][name] = check_path(name, options.data, output_dir, options.tiny)
            write_record(options.out, record)  # a path that fails later leaves the earlier ones
    print(f"Record: {options.out}")


if __name__ == "__main__":
    main()
