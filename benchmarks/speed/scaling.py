"""Data-parallel scaling: training images/s with one worker and with two (multi_worker on 127.0.0.1).

    python -m benchmarks.speed.scaling --out benchmarks/results/scaling/scaling_custom_cnn.json

Each configuration runs `--workers` processes, each pinned to `--cores-per-worker` cores of its
own, training the model under `distribute` ("none" for one worker, "multi_worker" with a
TF_CONFIG of local ports for several) on synthetic CIFAR-sized batches through the project's
pipeline (`build_for_run`, `compile_model`, `make_dataset`). The first epoch warms up (tracing);
the second is timed from its first step's start to its last step's end. Scaling efficiency =
throughput of N workers / (N x one worker's throughput on the same cores per worker); on this
2-core machine the second worker takes the second core, so the record also compares two workers
against one process using both cores.
"""

import argparse
import json
import os
import subprocess
import sys

from benchmarks.common import free_ports, write_record

CONFIGURATIONS = (  # (workers, cores per worker)
    (1, 1),
    (2, 1),
    (1, 2),
)


def run_configuration(workers, cores_per_worker, options):
    """Start the workers of one configuration; returns worker 0's measurement."""
    hosts = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    processes = []
    for index in range(workers):
        cores = list(range(index * cores_per_worker, (index + 1) * cores_per_worker))
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        if workers > 1:
            cluster = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
            environment["TF_CONFIG"] = json.dumps(cluster)
        command = [sys.executable, "-m", __spec__.name, "--measure", json.dumps(vars(options))]
        command += ["--cores", ",".join(map(str, cores)), "--workers", str(workers)]
        processes.append(subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True))
    outputs = [process.communicate(timeout=1800)[0] for process in processes]
    if any(process.returncode for process in processes):
        raise SystemExit(f"a worker failed:\n{outputs}")
    return json.loads(outputs[0].strip().splitlines()[-1])


def measure(options, cores, workers):
    """Images/s of the timed epoch in this process (one worker of the configuration)."""
    os.sched_setaffinity(0, cores)
    import utils  # noqa: F401  (first: it sets TensorFlow's flags before TensorFlow loads)

    # isort: split
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(len(cores))
    tf.config.threading.set_inter_op_parallelism_threads(len(cores))
    import numpy as np

    from benchmarks.speed.throughput import training_images_per_second
    from utils.config.resolve import args_for_model, resolve_args
    from utils.data.cifar10 import Split
    from utils.data.pipeline import make_dataset
    from utils.runtime.distribution import strategy_scope
    from utils.steps import build_for_run, start_session, training_settings
    from utils.training.loop import compile_model

    settings = {
        "models": [options["model"]],
        "batch_size": options["batch_size"],
        "distribute": "multi_worker" if workers > 1 else "none",
    }
    args = args_for_model(resolve_args(settings), options["model"])
    start_session(args)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4096, 32, 32, 3), dtype=np.uint8)
    split = Split(images, rng.integers(0, 10, size=4096))
    model = build_for_run(options["model"], args)
    with strategy_scope(args["distribute"]):
        compile_model(model, training_settings(args), args["learning_rate"])
        train = make_dataset(split, args["batch_size"], training=True, seed=0)
        rate = training_images_per_second(model, train, options["steps"], args["batch_size"], repeats=1)
    return {
        "images_per_second": rate,
        "precision": model.dtype_policy.name,
    }


def scaling_record(options):
    from benchmarks.common import machine_description

    results = []
    for workers, cores_per_worker in CONFIGURATIONS:
        result = run_configuration(workers, cores_per_worker, options)
        results.append({"workers": workers, "cores_per_worker": cores_per_worker, **result})
        print(results[-1], flush=True)
    one = next(r for r in results if r["workers"] == 1 and r["cores_per_worker"] == 1)
    two = next(r for r in results if r["workers"] == 2)
    both_cores = next(r for r in results if r["workers"] == 1 and r["cores_per_worker"] == 2)
    return {
        "model": options.model,
        "global_batch": options.batch_size,
        "timed_steps": options.steps,
        "configurations": results,
        "scaling_efficiency_2_workers": round(two["images_per_second"] / (2 * one["images_per_second"]), 3),
        "two_workers_vs_one_process_on_both_cores": round(
            two["images_per_second"] / both_cores["images_per_second"], 3
        ),
        "machine": machine_description(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="custom_cnn")
    parser.add_argument("--batch-size", type=int, default=256, help="global batch")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--out", help="JSON record")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one worker's options
    parser.add_argument("--cores", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.measure:
        cores = [int(core) for core in options.cores.split(",")]
        print(json.dumps(measure(json.loads(options.measure), cores, options.workers)))
        return None
    record = scaling_record(options)
    if options.out:
        record = write_record(options.out, record)
    print(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
