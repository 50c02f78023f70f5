import json

import numpy as np
import pytest

from models import build_model
from utils.analysis.summary import (
    ANALYSIS_FILE,
    CALIBRATION_FILE,
    analyse_model,
    class_probabilities,
    compare_analyses,
    f1_differences,
    saved_temperature,
)
from utils.config.resolve import resolve_args
from utils.data import cifar10 as cifar
from utils.runs.folders import RunFolder, read_json
from utils.steps import load_data

MODEL_FIGURES = ("confusion.png", "reliability.png", "robustness.png", "gradcam.png", "mistakes.png")


@pytest.fixture(scope="module")
def tiny_data(tiny_archive):
    return load_data(resolve_args({"data_path": tiny_archive, "val_fraction": 0.2}))


@pytest.fixture(scope="module")
def analysed(tiny_data, tmp_path_factory):
    """(model, summary, folder) of an untrained lenet analysed on the tiny data."""
    folder = tmp_path_factory.mktemp("lenet")
    model = build_model("lenet")
    summary = analyse_model(
        model, "lenet", tiny_data, str(folder), batch_size=16, seed=0, robustness_per_class=2
    )
    return model, summary, folder


def test_analysis_writes_every_table_and_figure(analysed):
    _, summary, folder = analysed
    for name in (*MODEL_FIGURES, "per_class.csv", "per_class.md", ANALYSIS_FILE, CALIBRATION_FILE):
        assert (folder / name).stat().st_size > 0, name
    assert read_json(str(folder / ANALYSIS_FILE)) == json.loads(json.dumps(summary))
    assert set(summary["seconds"]) == {
        "predictions",
        "per_class",
        "calibration",
        "robustness",
        "gradcam",
        "total",
    }


def test_analysis_agrees_with_the_predictions(analysed, tiny_data):
    model, summary, _ = analysed
    probabilities = class_probabilities(model, tiny_data.test.images, 16)
    accuracy = np.mean(probabilities.argmax(axis=1) == tiny_data.test.labels)
    assert summary["per_class"]["top1_accuracy"] == pytest.approx(accuracy)
    assert summary["per_class"]["top3_accuracy"] >= summary["per_class"]["top1_accuracy"]
    matrix = np.array(summary["per_class"]["confusion_matrix"])
    assert matrix.sum() == len(tiny_data.test) and np.trace(matrix) == round(accuracy * len(tiny_data.test))
    assert set(summary["per_class"]["f1"]) == set(cifar.CLASS_NAMES)
    assert summary["robustness"]["images"] == 20 and len(summary["robustness"]["corruptions"]) == 5
    assert summary["gradcam"]["layer"] == "block5_bn" and len(summary["gradcam"]["images"]) == 10


def test_temperature_is_fitted_on_validation_and_saved(analysed):
    _, summary, folder = analysed
    calibration = summary["calibration"]
    assert calibration["validation_nll"]["after"] <= calibration["validation_nll"]["before"]
    assert saved_temperature(str(folder)) == pytest.approx(calibration["temperature"])
    assert read_json(str(folder / CALIBRATION_FILE))["fitted_on"] == "validation split"


def test_without_validation_split_no_temperature(tiny_data, tmp_path):
    no_validation = cifar.Cifar10(tiny_data.train, None, tiny_data.test)
    summary = analyse_model(
        build_model("lenet"), "lenet", no_validation, str(tmp_path), batch_size=16, seed=0
    )
    assert summary["calibration"]["temperature"] is None and summary["calibration"]["after"] is None
    assert saved_temperature(str(tmp_path)) is None and not (tmp_path / CALIBRATION_FILE).exists()
    assert summary["robustness"]["images"] == len(tiny_data.test)


def test_comparison_of_two_analyses(analysed, tmp_path):
    _, summary, _ = analysed
    other = json.loads(json.dumps(summary))
    other["model"] = "other"
    other["per_class"]["f1"] = {
        name: f1 + (0.5 if name == "cat" else 0.0) for name, f1 in summary["per_class"]["f1"].items()
    }
    table = compare_analyses([summary, other], cifar.CLASS_NAMES, RunFolder(str(tmp_path), resumed=False))
    assert table.count("\n") == 3 and "| lenet |" in table and "| other |" in table
    assert (tmp_path / "analysis.md").read_text() == table + "\n"
    for figure in ("per_class_f1.png", "robustness.png"):
        assert (tmp_path / figure).stat().st_size > 0
    gains = f1_differences(summary, other)
    assert next(iter(gains)) == "cat" and gains["cat"] == pytest.approx(0.5)
