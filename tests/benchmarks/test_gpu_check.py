"""The GPU check runs every path on CPU with --tiny and writes a record a reader can trust."""

import pytest

from benchmarks.speed import gpu_check
from utils.config.settings import DEFAULTS
from utils.runs.folders import read_json

pytestmark = pytest.mark.slow  # runs every GPU-check path


def test_gpu_check_tiny_runs_every_path_and_records_it(tiny_archive, tmp_path):
    out = tmp_path / "gpu_check.json"
    gpu_check.main(["--data", tiny_archive, "--out", str(out), "--tiny"])
    record = read_json(str(out))
    assert record["tiny"] is True
    assert "TensorFlow" in record["runtime"] and "accelerator: none" in record["runtime"]
    assert record["machine"]["gpus"] == []
    assert list(record["paths"]) == ["notebook", "default_models", "fast_muon", "lite0_recipe"]
    expected_models = {
        "notebook": DEFAULTS["models"],  # the notebook trains the settings' default too
        "default_models": DEFAULTS["models"],  # train.py's default
        "fast_muon": ["fast_cnn"],
        "lite0_recipe": ["efficientnet_lite0"],
    }
    for name, path in record["paths"].items():
        assert list(path["models"]) == expected_models[name], name
        assert path["seconds"] > 0 and path["jit_compile"] is False  # "auto" on a CPU
        for model in path["models"].values():
            assert 0 <= model["test_accuracy"] <= 1
            assert model["train_images_per_second"] > 0 and model["epochs"] >= 1
    assert record["paths"]["fast_muon"]["overrides"]["preset"] == "fast_muon"
    assert record["paths"]["lite0_recipe"]["models"]["efficientnet_lite0"]["epochs"] == 2  # head + fine-tune
