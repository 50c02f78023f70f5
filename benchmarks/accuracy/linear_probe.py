"""Linear probe: how well a frozen backbone's pooled features separate CIFAR-10 linearly.

    python -m benchmarks.accuracy.linear_probe --data PATH --model efficientnet_lite0 --image-size 96 \\
        --train-per-class 1000 --out benchmarks/results/linear_probe/linear_probe_lite0_96.json

The backbone's pooled features are extracted twice, with its pretrained weights and with
random ones (cached like the frozen phase's), and a standardised multinomial logistic
regression (scikit-learn, its strength chosen on a held-out tenth of the probe's
training images) is fitted on each. Pretrained weights that were converted correctly
give far higher test accuracy than random ones.
"""

import argparse
import os
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.common import machine_description, write_record  # noqa: E402
from models.registry import model_entry  # noqa: E402
from utils.config.resolve import resolve_args  # noqa: E402
from utils.data import cifar10 as cifar  # noqa: E402
from utils.data.features import cached_features  # noqa: E402
from utils.runtime.environment import choose_precision, set_seed  # noqa: E402
from utils.steps import (
    build_for_run,  # noqa: E402
    start_session,  # noqa: E402
)

STRENGTHS = (0.01, 0.1, 1.0)  # inverse regularisation strengths tried on the held-out tenth


def fit_probe(train_features, train_labels, seed):
    """The logistic regression (with its standardisation) that does best on a held-out tenth.

    Returns:
        (fitted pipeline, the chosen inverse regularisation strength C).
    """
    features, held_out, labels, held_out_labels = train_test_split(
        train_features, train_labels, test_size=0.1, stratify=train_labels, random_state=seed
    )
    best, best_score, best_strength = None, -1.0, None
    for strength in STRENGTHS:
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=500))
        probe.fit(features, labels)
        score = probe.score(held_out, held_out_labels)
        if score > best_score:
            best, best_score, best_strength = probe, score, strength
    return best, best_strength


def probe_weights(args, data, weights):
    """Extract features with `weights` ("imagenet", a file, or None) and fit the probe."""
    set_seed(args["seed"])  # the same random initialisation on every run
    model = build_for_run(args["models"][0], {**args, "weights": weights})
    start = time.perf_counter()
    cache, batch = args["feature_cache_dir"], args["batch_size"]
    train_features = cached_features(model, data.train.images, cache, batch)[0].astype(np.float64)
    test_features = cached_features(model, data.test.images, cache, batch)[0].astype(np.float64)
    feature_seconds = time.perf_counter() - start
    start = time.perf_counter()
    probe, strength = fit_probe(train_features, data.train.labels, args["seed"])
    return {
        "weights": weights,
        "test_accuracy": round(float(probe.score(test_features, data.test.labels)), 4),
        "train_accuracy": round(float(probe.score(train_features, data.train.labels)), 4),
        "inverse_regularisation": strength,
        "feature_seconds": round(feature_seconds, 1),
        "fit_seconds": round(time.perf_counter() - start, 1),
        "feature_scale": float(np.abs(train_features).mean()),
    }


def probe_data(args, train_per_class, test_per_class):
    """The first images of each class of the training and test sets (no validation split)."""
    train, test = cifar.load_cifar10(args["data_path"])
    return cifar.Cifar10(
        train=cifar.take_per_class(train, train_per_class),
        validation=None,
        test=cifar.take_per_class(test, test_per_class),
    )


def parse_command_line(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="CIFAR-10 archive or folder (default: CIFAR10_DATA or download)")
    parser.add_argument("--model", default="efficientnet_lite0", help="registered pretrained model name")
    parser.add_argument("--weights", default="imagenet", help='"imagenet" or a weights file')
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--train-per-class", type=int, default=1000)
    parser.add_argument("--test-per-class", type=int, default=1000)
    parser.add_argument("--cache-dir", default=os.path.join("cache", "features"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--out", required=True, help="JSON record to write")
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_command_line(argv)
    args = resolve_args(
        {
            "data_path": options.data,
            "models": [options.model],
            "image_size": options.image_size,
            "feature_cache_dir": options.cache_dir,
            "seed": options.seed,
            "precision": options.precision,
        }
    )
    start_session(args)
    data = probe_data(args, options.train_per_class, options.test_per_class)
    probes = [probe_weights(args, data, weights) for weights in (options.weights, None)]
    record = {
        "model": options.model,
        "image_size": options.image_size,
        "precision": choose_precision(
            args["precision"], model_entry(options.model).cpu_float32
        ),  # as build_for_run picks it
        "train_images": len(data.train),
        "test_images": len(data.test),
        "pretrained": probes[0],
        "random": probes[1],
        "machine": machine_description(),
    }
    record = write_record(options.out, record)
    print(
        f"{options.model} at {options.image_size} px, linear probe test accuracy: "
        f"{100 * probes[0]['test_accuracy']:.2f}% with {options.weights} weights, "
        f"{100 * probes[1]['test_accuracy']:.2f}% with random weights"
    )
    return record


if __name__ == "__main__":
    main()
