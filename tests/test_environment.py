"""Hardware-dependent choices: precision policy and XLA."""

import pytest

from utils import environment


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
