"""Hardware-dependent choices: precision policy and XLA."""

import pytest

from models.registry import model_entry
from utils.runtime import environment


@pytest.mark.parametrize(
    "gpu, cpu_bf16, expected",
    [
        ((8, 0), False, "mixed_float16"),
        ((6, 1), True, "float32"),
        (None, True, "mixed_bfloat16"),
        (None, False, "float32"),
    ],
)
def test_precision_follows_the_hardware(monkeypatch, gpu, cpu_bf16, expected):
    monkeypatch.setattr(environment, "_gpu_compute_capability", lambda: gpu)
    monkeypatch.setattr(environment, "_cpu_has_bf16", lambda: cpu_bf16)
    assert environment.choose_precision("auto") == expected
    assert environment.choose_precision("float32") == "float32"


@pytest.mark.parametrize("gpu, expected", [(None, False), ((9, 0), "auto")])
def test_xla_is_off_on_cpus_and_left_to_keras_on_gpus(monkeypatch, gpu, expected):
    monkeypatch.setattr(environment, "_gpu_compute_capability", lambda: gpu)
    assert environment.choose_jit_compile("auto") == expected
    assert environment.choose_jit_compile(True) is True


@pytest.mark.parametrize(
    "gpu, cpu_bf16, model, expected",
    [
        (None, True, "efficientnet_lite0", "float32"),  # depthwise: slower under bf16 on CPUs
        (None, True, "custom_cnn", "mixed_bfloat16"),
        ((8, 0), False, "efficientnet_lite0", "mixed_float16"),  # the table is for CPUs only
    ],
)
def test_precision_per_model(monkeypatch, gpu, cpu_bf16, model, expected):
    monkeypatch.setattr(environment, "_gpu_compute_capability", lambda: gpu)
    monkeypatch.setattr(environment, "_cpu_has_bf16", lambda: cpu_bf16)
    assert environment.choose_precision("auto", model_entry(model).cpu_float32) == expected
    assert environment.choose_precision("mixed_bfloat16", model_entry(model).cpu_float32) == "mixed_bfloat16"


def test_each_model_is_built_under_its_own_policy(monkeypatch):
    from utils.config.resolve import resolve_args
    from utils.steps import build_for_run

    monkeypatch.setattr(environment, "_gpu_compute_capability", lambda: None)
    monkeypatch.setattr(environment, "_cpu_has_bf16", lambda: True)
    args = resolve_args({"weights": None})
    scratch, pretrained = build_for_run("lenet", args), build_for_run("efficientnet_lite0", args)
    assert scratch.get_layer("block1_conv").dtype_policy.name == "mixed_bfloat16"
    assert pretrained.get_layer("backbone").get_layer("stem_conv").dtype_policy.name == "float32"
    assert scratch.get_layer("block1_conv").compute_dtype == "bfloat16"


ONEDNN_CHECK = """
import runpy, sys
runpy.run_path(sys.argv[1], run_name="imported") if sys.argv[1].endswith(".py") else __import__(sys.argv[1])
from tensorflow.python.util import _pywrap_util_port
print("oneDNN", _pywrap_util_port.IsMklEnabled())
"""


@pytest.mark.slow  # a training run of several phases or a subprocess
@pytest.mark.parametrize(
    "entry", ["train.py", "benchmarks.accuracy.time_to_accuracy", "benchmarks.speed.profile_step", "models"]
)
def test_entry_points_turn_onednn_on_before_tensorflow_loads(entry):
    """TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, at import: the scripts and the notebook's first
    project import (`models`) must reach utils/__init__.py before TensorFlow."""
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    result = subprocess.run(
        [sys.executable, "-c", ONEDNN_CHECK, entry], capture_output=True, text=True, env=env, check=True
    )
    assert "oneDNN True" in result.stdout
