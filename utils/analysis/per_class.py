"""Where a model fails: confusion matrix, per-class scores, top-k accuracy, confused pairs, mistakes."""

import csv

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, top_k_accuracy_score

SCORE_COLUMNS = ("precision", "recall", "f1-score", "support")


def confusion(labels, predicted, num_classes):
    """Counts: row = true class, column = predicted class."""
    return confusion_matrix(labels, predicted, labels=np.arange(num_classes))


def class_scores(labels, predicted, class_names):
    """{class name: {precision, recall, f1-score, support}} per class, then the averages
    ("macro avg", "weighted avg"), from scikit-learn's `classification_report`."""
    report = classification_report(
        labels,
        predicted,
        labels=np.arange(len(class_names)),
        target_names=list(class_names),
        output_dict=True,
        zero_division=0,
    )
    report.pop("accuracy", None)  # present only when every class was predicted; top-1 is reported apart
    return report


def top_k_accuracy(probabilities, labels, k):
    return float(top_k_accuracy_score(labels, probabilities, k=k, labels=np.arange(probabilities.shape[1])))


def most_confused_pairs(matrix, class_names, count=5):
    """The `count` class pairs confused most often, both directions added, most first."""
    pairs = []
    for first in range(len(class_names)):
        for second in range(first + 1, len(class_names)):
            forward, backward = int(matrix[first, second]), int(matrix[second, first])
            if forward + backward:
                pairs.append(
                    {
                        "classes": [class_names[first], class_names[second]],
                        "errors": forward + backward,
                        "first_as_second": forward,
                        "second_as_first": backward,
                    }
                )
    return sorted(pairs, key=lambda pair: -pair["errors"])[:count]


def confident_mistakes(probabilities, labels, count=16):
    """Indices of the wrongly classified images, most confident first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    return wrong[np.argsort(-probabilities[wrong].max(axis=1), kind="stable")][:count]


def save_class_scores(scores, csv_path, markdown_path):
    """The per-class report as CSV (fractions) and as a markdown table (percent)."""
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("class", *SCORE_COLUMNS))
        for name, row in scores.items():
            writer.writerow((name, *(row[column] for column in SCORE_COLUMNS)))
    lines = ["| class | precision | recall | F1 | images |", "| --- | --- | --- | --- | --- |"]
    for name, row in scores.items():
        percents = (f"{100 * row[column]:.1f}%" for column in SCORE_COLUMNS[:3])
        lines.append(f"| {name} | {' | '.join(percents)} | {int(row['support'])} |")
    with open(markdown_path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
