import numpy as np
import pytest

from utils.analysis.per_class import (
    class_scores,
    confident_mistakes,
    confusion,
    most_confused_pairs,
    save_class_scores,
    top_k_accuracy,
)

NAMES = ("a", "b", "c")
LABELS = np.array([0, 0, 0, 1, 1, 2])
PREDICTED = np.array([0, 0, 1, 1, 2, 2])


def test_confusion_matrix_rows_are_true_classes():
    np.testing.assert_array_equal(confusion(LABELS, PREDICTED, 3), [[2, 1, 0], [0, 1, 1], [0, 0, 1]])


def test_class_scores_of_constructed_predictions():
    scores = class_scores(LABELS, PREDICTED, NAMES)
    assert scores["a"]["precision"] == 1.0 and scores["a"]["recall"] == pytest.approx(2 / 3)
    assert scores["a"]["f1-score"] == pytest.approx(0.8)
    assert scores["b"]["f1-score"] == pytest.approx(0.5)
    assert scores["c"]["precision"] == 0.5 and scores["c"]["recall"] == 1.0
    assert scores["c"]["support"] == 1
    assert scores["macro avg"]["f1-score"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_a_class_never_predicted_scores_zero_without_warning():
    scores = class_scores(np.array([0, 1]), np.array([0, 0]), ("a", "b"))
    assert scores["b"]["precision"] == 0.0 and scores["b"]["f1-score"] == 0.0


def test_top_k_accuracy():
    probabilities = np.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    labels = np.array([0, 1, 3])
    assert top_k_accuracy(probabilities, labels, 1) == pytest.approx(1 / 3)
    assert top_k_accuracy(probabilities, labels, 3) == pytest.approx(2 / 3)


def test_most_confused_pairs_add_both_directions():
    matrix = np.array([[5, 3, 0], [4, 5, 1], [0, 2, 5]])
    pairs = most_confused_pairs(matrix, NAMES, count=5)
    assert pairs[0] == {"classes": ["a", "b"], "errors": 7, "first_as_second": 3, "second_as_first": 4}
    assert pairs[1]["classes"] == ["b", "c"] and pairs[1]["errors"] == 3
    assert len(pairs) == 2  # a and c are never confused


def test_confident_mistakes_most_confident_first():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95]])
    labels = np.array([0, 0, 0, 1])
    assert confident_mistakes(probabilities, labels).tolist() == [1, 2]


def test_class_scores_files(tmp_path):
    scores = class_scores(LABELS, PREDICTED, NAMES)
    save_class_scores(scores, tmp_path / "s.csv", tmp_path / "s.md")
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert rows[0] == "class,precision,recall,f1-score,support"
    assert rows[1].startswith("a,1.0,0.666") and len(rows) == 1 + 3 + 2
    assert "| b | 50.0% | 50.0% | 50.0% | 2 |" in (tmp_path / "s.md").read_text()
