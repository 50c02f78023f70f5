"""Data-parallel training with `tf.distribute`: which strategy `args['distribute']` asks for, and
the scope models are built and trained under.

- "none": TensorFlow's default (one device).
- "mirrored": `MirroredStrategy` over every local GPU, or, without one, every logical CPU device
  (`args['cpu_devices']` splits the CPU into that many, for trying it on a laptop or in tests).
- "multi_worker": `MultiWorkerMirroredStrategy` over the hosts that the `TF_CONFIG` environment
  variable lists; each host runs the same command with its own task index. The chief (task 0 of
  "chief", else of "worker") writes the run folder and tests the model; the others train into a
  scratch folder of their own.

`args['batch_size']` is the global batch (split across all replicas) and `learning_rate` applies
to it as it is: the same args give the same optimisation on any number of replicas. Scaling the
batch by k on k replicas (same images per replica) calls for scaling the learning rate by k too
(the linear rule), which is left to the user.
"""

import contextlib
import functools
import json
import os
import tempfile

import tensorflow as tf

from utils.errors import ConfigError


def configure_cpu_devices(count):
    """Split the CPU into `count` logical devices (null: leave TensorFlow's one). Must run
    before TensorFlow starts its runtime; an unchanged configuration is accepted again."""
    if count is None:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)  # None: one device, the default
    if count == (1 if current is None else len(current)):
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:
        raise ConfigError(
            f"args['cpu_devices'] = {count} cannot be applied: TensorFlow has started already in this "
            "process (restart the kernel and set it before anything runs)."
        ) from error


def read_tf_config():
    """The cluster of a multi-worker run from the TF_CONFIG environment variable.

    Raises:
        ConfigError: when TF_CONFIG is missing, is not JSON, or lacks a cluster and a task.
    """
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ConfigError(
            "args['distribute'] = 'multi_worker' needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}.'
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({error}): {text!r}.") from None
    task = config.get("task") if isinstance(config, dict) else None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not (isinstance(cluster, dict) and cluster and isinstance(task, dict)):
        raise ConfigError(
            f'TF_CONFIG needs a "cluster" of host lists and a "task" with type and index; got {text!r}.'
        )
    if task.get("type") not in cluster or not isinstance(task.get("index"), int):
        raise ConfigError(
            f"TF_CONFIG's task {task!r} names no index of a job in its cluster {sorted(cluster)}."
        )
    if not 0 <= task["index"] < len(cluster[task["type"]]):
        raise ConfigError(f"TF_CONFIG's task index {task['index']} is outside its {task['type']} list.")
    return config


def is_chief(distribute):
    """Whether this process writes the run: always, but in a multi-worker run (`distribute`
    "multi_worker") only its chief."""
    if distribute != "multi_worker":
        return True
    config = read_tf_config()
    task, chief_type = config["task"], "chief" if "chief" in config["cluster"] else "worker"
    return task["type"] == chief_type and task["index"] == 0


class _MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy with the `reduce` that Keras 3's `fit` expects
    (keras-team/keras#20585): it takes a nested structure, as MirroredStrategy's does (fit
    reduces a whole (images, labels) batch to trace the model), and reduces a per-replica
    scalar across replicas when asked for axis 0 (fit reduces each scalar metric that way)."""

    def reduce(self, reduce_op, value, axis):
        def reduce_one(item):
            local = self.experimental_local_results(item)[0]
            scalar = getattr(local, "shape", None) is not None and local.shape.rank == 0
            return super(_MultiWorkerStrategy, self).reduce(reduce_op, item, None if scalar else axis)

        return tf.nest.map_structure(reduce_one, value)


@functools.cache
def _strategy(kind, tf_config):
    """One strategy per process and kind (TensorFlow allows one multi-worker strategy)."""
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return _MultiWorkerStrategy()


def distribution_strategy(distribute):
    """The strategy `distribute` (args["distribute"]) names, or None for "none"."""
    if distribute == "none":
        return None
    if distribute == "multi_worker":
        read_tf_config()
    return _strategy(distribute, os.environ.get("TF_CONFIG"))


def strategy_scope(distribute):
    """The scope that models are built, compiled and trained under."""
    strategy = distribution_strategy(distribute)
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def worker_output_dir(distribute):
    """Where this process writes its run: None (the run's output folder) for the chief, a scratch
    folder for the other workers of a multi-worker run (they train the same weights)."""
    if is_chief(distribute):
        return None
    return tempfile.mkdtemp(prefix=f"worker{read_tf_config()['task']['index']}-")


def describe_distribution(distribute, batch_size):
    """One line: how many replicas share each global batch."""
    strategy = distribution_strategy(distribute)
    if strategy is None:
        return f"Devices: one ({batch_size} images per step)"
    replicas = strategy.num_replicas_in_sync
    return (
        f"Devices: {replicas} replicas ({distribute}), global batch {batch_size} "
        f"= {batch_size / replicas:g} images per replica"
    )


def validation_batches(distribute, batch_size, count):
    """Whether validation must use whole batches only (distributed runs), after checking that
    `count` validation images make at least one.

    Raises:
        ConfigError: for a distributed run whose validation split is smaller than a batch.
    """
    if distribute == "none":
        return False
    if count < batch_size:
        raise ConfigError(
            f"A distributed run validates on whole global batches of args['batch_size'] = "
            f"{batch_size} images, but the validation split has {count}; lower batch_size "
            "or raise val_fraction."
        )
    return True
