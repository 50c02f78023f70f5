"""Data-parallel training: the args, TF_CONFIG checks, mirrored training on two logical CPU devices
and a two-process multi-worker run on 127.0.0.1 whose trained model loads and evaluates."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from benchmarks.common import free_ports
from tests import ROOT
from utils.config.resolve import resolve_args
from utils.errors import ConfigError
from utils.runs.folders import read_json
from utils.runtime.distribution import configure_cpu_devices, is_chief, read_tf_config
from utils.steps import load_data

pytestmark = pytest.mark.slow  # runs several worker processes


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "needs the TF_CONFIG environment variable"),
        ("{cluster", "not valid JSON"),
        ('{"task": {"type": "worker", "index": 0}}', 'needs a "cluster"'),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "names no index"),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
            "outside its worker list",
        ),
    ],
)
def test_bad_tf_config_is_refused_clearly(monkeypatch, value, message):
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(ConfigError, match=message):
        read_tf_config()


@pytest.mark.parametrize(
    ("cluster", "task", "chief"),
    [
        ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 0}, True),
        ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1}, False),
        ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, False),
        ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "chief", "index": 0}, True),
    ],
)
def test_only_the_chief_writes_a_multi_worker_run(monkeypatch, cluster, task, chief):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    assert is_chief("multi_worker") is chief
    assert is_chief("none") is True  # not distributed: always


def test_distribute_and_cpu_devices_are_validated():
    with pytest.raises(ConfigError, match='"none", "mirrored" or "multi_worker"'):
        resolve_args({"distribute": "horovod"})
    with pytest.raises(ConfigError, match="cpu_devices"):
        resolve_args({"cpu_devices": 0})


def test_tpu_is_not_offered():
    """Colab's TPU runtimes ship no TensorFlow and no TPU path was ever run: the choice is refused."""
    accepted = '"none", "mirrored" or "multi_worker"'
    with pytest.raises(ConfigError, match=f"distribute.*'tpu'.*{accepted}"):
        resolve_args({"distribute": "tpu"})


def test_cpu_devices_after_tensorflow_started_says_so():
    tf.config.list_logical_devices("CPU")  # starts the runtime
    configure_cpu_devices(len(tf.config.list_logical_devices("CPU")))  # unchanged: accepted
    with pytest.raises(ConfigError, match="TensorFlow has started already"):
        configure_cpu_devices(3)


def run_train(arguments, cwd, environment=None):
    return subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "train.py"), *arguments],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2", **(environment or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def small_run(tiny_archive, run_name, *extra):
    settings = {
        "data_path": tiny_archive,
        "small_run": True,
        "models": ["custom_cnn"],
        "model_options": {"custom_cnn": {"width": 8}},
        "analysis": False,
        "precision": "float32",
        "verbose": 0,
        "batch_size": 10,
        "run_name": run_name,
    }
    return [f"--set={key}={json.dumps(value)}" for key, value in settings.items()] + list(extra)


def test_mirrored_training_on_two_logical_cpus(tiny_archive, tmp_path):
    process = run_train(
        small_run(tiny_archive, "mirrored", "--set=distribute=mirrored", "--set=cpu_devices=2"), tmp_path
    )
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output[-3000:]
    assert "Devices: 2 replicas (mirrored), global batch 10 = 5 images per replica" in output
    metrics = read_json(str(tmp_path / "runs" / "mirrored" / "metrics.json"))
    assert 0 <= metrics["custom_cnn"]["test_accuracy"] <= 1


def test_multi_worker_training_with_two_processes(tiny_archive, tmp_path):
    hosts = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
        arguments = small_run(tiny_archive, "multi", "--set=distribute=multi_worker")
        processes.append(run_train(arguments, tmp_path, {"TF_CONFIG": json.dumps(config)}))
    outputs = []
    for process in processes:
        try:
            outputs.append(process.communicate(timeout=300)[0])
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
    assert [p.returncode for p in processes] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    assert "Devices: 2 replicas (multi_worker)" in outputs[0]
    run_dir = tmp_path / "runs" / "multi"
    assert os.listdir(tmp_path / "runs") == ["multi"]  # the second worker wrote elsewhere
    metrics = read_json(str(run_dir / "metrics.json"))
    model = keras.models.load_model(str(run_dir / "custom_cnn" / "best.keras"))
    test = load_data(resolve_args({"data_path": tiny_archive, "small_run": True})).test
    accuracy = np.mean(np.argmax(model.predict(test.images.astype("float32"), verbose=0), 1) == test.labels)
    assert accuracy == pytest.approx(metrics["custom_cnn"]["test_accuracy"], abs=1e-6)
