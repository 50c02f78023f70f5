import keras
import numpy as np
import pytest
import tensorflow as tf

from utils.evaluation.test_set import loss_and_accuracy, markdown_table, predict, save_comparison
from utils.runs.folders import RunFolder, read_json

ROW = {
    "model": "m",
    "test_loss": 0.5,
    "test_accuracy": 0.875,
    "test_accuracy_tta": 0.9,
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
    assert (
        "| m | 0.5000 | 87.50% | 90.00% | 1,234 | 3 | 12 | 1.0 |" in (tmp_path / "comparison.md").read_text()
    )
    assert (tmp_path / "comparison.csv").read_text().splitlines()[1].startswith("m,,0.5,0.875,0.9,1234")
    assert markdown_table([ROW]).count("\n") == 2


def test_rows_of_several_seeds_are_kept_apart(tmp_path):
    run = RunFolder(str(tmp_path), resumed=False)
    rows = [{**ROW, "seed": 0}, {**ROW, "seed": 1, "test_accuracy": 0.9}]
    save_comparison(rows, run)
    assert set(read_json(run.file("metrics.json"))) == {"m seed 0", "m seed 1"}
    assert "| m seed 1 | 0.5000 | 90.00% |" in markdown_table(rows)
    assert (tmp_path / "comparison.csv").read_text().splitlines()[2].startswith("m,1,0.5,0.9,")


class MirrorSensitive(keras.Model):
    """Predicts class 0 when the left half is brighter, else class 1."""

    def call(self, images, training=False):
        half = images.shape[2] // 2
        left = keras.ops.mean(images[:, :, :half], axis=(1, 2, 3))
        right = keras.ops.mean(images[:, :, half:], axis=(1, 2, 3))
        return keras.ops.stack(
            [keras.ops.cast(left > right, "float32"), keras.ops.cast(left <= right, "float32")], 1
        )


def test_flip_tta_averages_image_and_mirror():
    images = np.zeros((2, 4, 4, 3), np.float32)
    images[0, :, :2] = 255  # left bright
    dataset = tf.data.Dataset.from_tensor_slices((images, np.eye(2, dtype=np.float32)[[0, 1]])).batch(2)
    plain, labels = predict(MirrorSensitive(), dataset)
    tta, _ = predict(MirrorSensitive(), dataset, flip_tta=True)
    np.testing.assert_array_equal(plain, [[1, 0], [0, 1]])
    np.testing.assert_array_equal(tta, [[0.5, 0.5], [0, 1]])  # the uniform image is symmetric
    assert labels.tolist() == [0, 1]
