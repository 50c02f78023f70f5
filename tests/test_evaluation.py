import numpy as np
import pytest

from utils.evaluation import loss_and_accuracy, markdown_table, save_comparison
from utils.runs import RunFolder, read_json

ROW = {
    "model": "m",
    "test_loss": 0.5,
    "test_accuracy": 0.875,
    "params": 1234,
    "epochs": 3,
    "train_seconds": 12.0,
    "eval_seconds": 1.0,
}


def test_loss_and_accuracy_values():
    probabilities = np.array([[0.5, 0.5, 0.0], [0.1, 0.8, 0.1]])
    loss, accuracy = loss_and_accuracy(probabilities, np.array([0, 1]))
    assert loss == pytest.approx(-(np.log(0.5) + np.log(0.8)) / 2)
    assert accuracy == 1.0  # argmax picks the first of a tie


def test_comparison_files(tmp_path):
    run = RunFolder(str(tmp_path), resumed=False)
    save_comparison([ROW], run)
    assert read_json(run.file("metrics.json")) == {"m": ROW}
    assert "| m | 0.5000 | 87.50% | 1,234 | 3 | 12 | 1.0 |" in (tmp_path / "comparison.md").read_text()
    assert (tmp_path / "comparison.csv").read_text().splitlines()[1].startswith("m,0.5,0.875,1234")
    assert markdown_table([ROW]).count("\n") == 2
