"""Throughput benchmark: training and inference images/s by precision and XLA, and pipeline overhead.

    python -m benchmarks.speed.throughput --model fast_cnn --preset fast --data PATH \\
        --out benchmarks/results/throughput/throughput_fast_cnn.json

For each precision (float32 and the automatic mixed policy) and XLA setting it measures
a compute-only training loop on synthetic tensors, the full training pipeline (tf.data,
augmentation, callbacks) on CIFAR-10, and inference; the pipeline overhead is the time
the full pipeline adds to the compute-only loop.
"""

import argparse
import resource
import tempfile
import time

from benchmarks.common import machine_description, write_record  # noqa: E402
from models import adapt_to_images, parts  # noqa: E402
from utils.config.overrides import parse_override  # noqa: E402
from utils.config.resolve import args_for_model, resolve_args  # noqa: E402
from utils.runtime.environment import choose_precision, set_seed  # noqa: E402
from utils.steps import (  # noqa: E402
    build_for_run,
    load_data,
    make_datasets,
    run_callbacks,
    training_settings,
)
from utils.training.loop import compile_model, unfreeze_top  # noqa: E402

TIMED_REPEATS = 3


def fastest_seconds(timed_call, repeats=TIMED_REPEATS):
    """Call `timed_call()` (which returns the seconds it measured) once to warm up (tracing, XLA
    compilation), then `repeats` times; the fewest seconds."""
    timed_call()
    return min(timed_call() for _ in range(repeats))


def images_per_second(call, images, repeats=TIMED_REPEATS):
    """Images/s of `call()` timed whole, fastest of `repeats` calls after a warm-up call."""

    def timed_call():
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    return round(images / fastest_seconds(timed_call, repeats), 1)


def training_images_per_second(model, dataset, steps, batch_size, callbacks=(), repeats=TIMED_REPEATS):
    """Training images/s of `model.fit` on `dataset` over `steps` steps, timed from the first step's
    start to the last step's end (fastest of `repeats` fits after a warm-up fit). Timing the whole
    `fit` call instead counts its setup and teardown, which on 2 cores sometimes stalled for seconds
    (a 10-step fit of custom_cnn rounded up to 10.24 s, halving the rate it reported)."""
    import keras

    starts, ends = [], []
    timer = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: starts.append(time.perf_counter()),
        on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()),
    )

    def timed_fit():
        starts.clear()
        ends.clear()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[*callbacks, timer])
        return ends[-1] - starts[0]

    return round(steps * batch_size / fastest_seconds(timed_fit, repeats), 1)


def prepared_model(args, datasets, fine_tune_layers=None):
    """The first model of `args`, fitted to the training images and compiled for training (with
    `fine_tune_layers`, that many top layers of its pretrained backbone unfrozen)."""
    set_seed(args["seed"])
    model = build_for_run(args["models"][0], args)
    adapt_to_images(model, datasets.data.train.images)
    if fine_tune_layers is not None:
        unfreeze_top(parts.backbone(model), fine_tune_layers)
    compile_model(model, training_settings(args), args["learning_rate"])
    return model


def add_step_benchmark_arguments(parser):
    """The options `step_benchmark_args` reads."""
    parser.add_argument("--data", help="CIFAR-10 archive or folder (default: CIFAR10_DATA or download)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--preset")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--tiny", action="store_true", help="small_run data (for tests)")


def step_benchmark_args(options):
    """The args of a training-step benchmark of `--model` (its own, `args_for_model`): `--preset`,
    `--data`, `--tiny` and the `--set` overrides, without checkpoints or backups (nothing to resume)."""
    args = resolve_args(
        {
            "preset": options.preset,
            "data_path": options.data,
            "models": [options.model],
            "small_run": options.tiny,
            "backup_and_restore": False,
            "checkpoint": False,
            **dict(parse_override(text) for text in options.set),
        }
    )
    return args_for_model(args, options.model)


def measure(args, datasets, steps, fine_tune_layers=None):
    """Compute-only, full-pipeline and inference images/s of one configuration; with
    `fine_tune_layers`, of fine-tuning that many top layers of a pretrained backbone."""
    model = prepared_model(args, datasets, fine_tune_layers)
    import tensorflow as tf  # after the project's imports, which set TensorFlow's flags first

    batch = args["batch_size"]
    images, labels = next(iter(datasets.train))
    synthetic = tf.data.Dataset.from_tensors((images, labels)).repeat()
    compute = training_images_per_second(model, synthetic, steps, batch)
    with tempfile.TemporaryDirectory() as folder:
        callbacks = run_callbacks(args, folder, "benchmark")
        pipeline = training_images_per_second(model, datasets.train.repeat(), steps, batch, callbacks)
    inference = images_per_second(lambda: model.predict(images, batch_size=batch, verbose=0), batch)
    return {
        "precision": args["precision"],
        "jit_compile": args["jit_compile"],
        "train_images_per_second_compute_only": compute,
        "train_images_per_second_pipeline": pipeline,
        "pipeline_overhead": round(1 - pipeline / compute, 4),
        "inference_images_per_second": inference,
    }


def parse_command_line(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_step_benchmark_arguments(parser)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    parser.add_argument("--out", required=True)
    parser.add_argument("--no-xla", action="store_true", help="skip the XLA (jit_compile) measurements")
    parser.add_argument(
        "--fine-tune-layers",
        type=lambda text: text if text == "all" else int(text),
        help='pretrained models: measure fine-tuning of this many top backbone layers ("all" for every one)',
    )
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_command_line(argv)
    base = step_benchmark_args(options)
    datasets = make_datasets(load_data(base), base)
    policies = sorted({"float32", choose_precision("auto")})
    results = [
        measure(
            {**base, "precision": policy, "jit_compile": jit},
            datasets,
            options.steps,
            options.fine_tune_layers,
        )
        for policy in policies
        for jit in ((False,) if options.no_xla else (False, True))
    ]
    fastest = max(results, key=lambda r: r["train_images_per_second_pipeline"])
    record = {
        "model": options.model,
        "preset": options.preset,
        "fine_tune_layers": options.fine_tune_layers,
        "image_size": base["image_size"],
        "batch_size": base["batch_size"],
        "steps": options.steps,
        "timed_repeats": TIMED_REPEATS,
        "results": results,
        "fastest": {key: fastest[key] for key in ("precision", "jit_compile")},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": machine_description(),
    }
    record = write_record(options.out, record)
    for row in results:
        train, compute = row["train_images_per_second_pipeline"], row["train_images_per_second_compute_only"]
        print(
            f"{row['precision']:>15} xla={row['jit_compile']!s:5}: train {train:8.1f} img/s (compute only "
            f"{compute:8.1f}, overhead {100 * row['pipeline_overhead']:5.1f}%), "
            f"inference {row['inference_images_per_second']:8.1f} img/s"
        )
    return record


if __name__ == "__main__":
    main()
