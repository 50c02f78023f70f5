"""Interleaved A/B of `fast_cnn`'s training step: its builder at a git revision against the
working tree's, with the same optimizer (a preset's), precision and synthetic batch.

    python -m benchmarks.speed.step_versus_revision --before HEAD~1 --preset fast_muon \\
        --precision mixed_bfloat16 --out benchmarks/results/step_fast_cnn_bf16.json

Both models are built, compiled and warmed up first; then they take turns `--rounds` times, each
turn timed as `throughput.py` times training (first step's start to last step's end, fastest of
two fits), so a drift of the machine's speed hits both alike. The record keeps every turn.
"""

import argparse
import importlib.util
import os
import tempfile
from unittest import mock

from benchmarks.common import git, machine_description, write_record  # noqa: E402
from benchmarks.speed.throughput import training_images_per_second  # noqa: E402
from utils.config.resolve import resolve_args  # noqa: E402
from utils.steps import training_settings  # noqa: E402
from utils.training.loop import compile_model  # noqa: E402

MODULE = "models/fast_cnn.py"


def module_at_revision(revision):
    """`models/fast_cnn.py` as it was at `revision`, imported apart from the working tree's
    (its registrations in the model registry and Keras's serialization registry left out)."""
    source = git("show", f"{revision}:{MODULE}")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "fast_cnn_before.py")
        with open(path, "w") as file:
            file.write(source)
        spec = importlib.util.spec_from_file_location("fast_cnn_before", path)
        module = importlib.util.module_from_spec(spec)
        unregistered = lambda *args, **kwargs: lambda obj: obj  # noqa: E731
        with (
            mock.patch("models.registry.register_model", unregistered),
            mock.patch("keras.saving.register_keras_serializable", unregistered),
        ):
            spec.loader.exec_module(module)
    return module


def warmed_up_model(module, args, dataset, images):
    """`module`'s fast_cnn, whitening fitted, compiled as `args` say, its step traced."""
    import keras

    keras.utils.set_random_seed(args["seed"])
    model = module.build_fast_cnn(images.shape[1:], 10)
    module.adapt_to_images(model, images)
    compile_model(model, training_settings(args), args["learning_rate"])
    model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)
    return model


def synthetic_batches(batch_size):
    """(images, an endless dataset of that one batch with one-hot labels)."""
    import keras
    import numpy as np
    import tensorflow as tf

    images = np.random.default_rng(0).uniform(0, 255, (batch_size, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical(np.arange(batch_size) % 10, 10)
    return images, tf.data.Dataset.from_tensors((images, labels)).repeat()


def compare(options):
    import keras

    import models.fast_cnn as working_tree

    batch_size = {"batch_size": options.batch_size} if options.batch_size else {}
    args = resolve_args({"preset": options.preset, **batch_size})
    keras.config.set_dtype_policy(options.precision)
    images, dataset = synthetic_batches(args["batch_size"])
    sides = {
        "before": warmed_up_model(module_at_revision(options.before), args, dataset, images),
        "after": warmed_up_model(working_tree, args, dataset, images),
    }
    rates = {side: [] for side in sides}
    for _ in range(options.rounds):
        for side, model in sides.items():
            rate = training_images_per_second(model, dataset, options.steps, args["batch_size"], repeats=2)
            rates[side].append(rate)
            print(f"{side}: {rate} images/s", flush=True)
    return {
        "before_revision": git("rev-parse", options.before),
        "preset": options.preset,
        "precision": options.precision,
        "batch_size": args["batch_size"],
        "steps": options.steps,
        "train_images_per_second": rates,
        "mean": {side: round(sum(values) / len(values), 1) for side, values in rates.items()},
        "machine": machine_description(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision of the 'before' fast_cnn")
    parser.add_argument("--preset", default="fast_muon", help="the optimizer and batch size to train with")
    parser.add_argument("--precision", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--batch-size", type=int, help="instead of the preset's")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per fit")
    parser.add_argument("--rounds", type=int, default=3, help="turns each side takes")
    parser.add_argument("--out", required=True)
    options = parser.parse_args(argv)
    record = compare(options)
    record = write_record(options.out, record)
    print(f"mean images/s: {record['mean']}")


if __name__ == "__main__":
    main()
