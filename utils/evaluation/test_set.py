"""Test-set evaluation of trained models and the comparison table."""

import csv
import time

import numpy as np

from utils.runs.folders import write_json

COLUMNS = (
    "model",
    "test_loss",
    "test_accuracy",
    "test_accuracy_tta",
    "params",
    "epochs",
    "train_seconds",
    "eval_seconds",
)


def predict(model, dataset, flip_tta=False):
    """Class probabilities for every image of `dataset`, and the true labels.

    With `flip_tta`, each probability is the mean over the image and its mirror image
    (horizontal-flip test-time augmentation).
    """
    plain, mirrored, labels = forward_passes(model, dataset, mirror=flip_tta)
    return ((plain + mirrored) / 2 if flip_tta else plain), labels


def forward_passes(model, dataset, mirror):
    """(probabilities, probabilities of the mirror images or None, labels), one pass each.

    Batches go through the model's compiled predict step: calling the model eagerly kept about
    11 GiB resident for a 224-px backbone on CPU.
    """
    plain, mirrored, labels = [], [], []
    for images, one_hot in dataset:
        plain.append(np.asarray(model.predict_on_batch(images), dtype=np.float64))
        if mirror:
            mirrored.append(np.asarray(model.predict_on_batch(images[:, :, ::-1, :]), dtype=np.float64))
        labels.append(np.argmax(one_hot, axis=-1))
    return np.concatenate(plain), (np.concatenate(mirrored) if mirror else None), np.concatenate(labels)


def loss_and_accuracy(probabilities, labels):
    """Plain cross-entropy (no label smoothing, so models compare fairly) and accuracy."""
    true_class = probabilities[np.arange(len(labels)), labels]
    loss = float(-np.mean(np.log(np.clip(true_class, 1e-12, 1.0))))
    accuracy = float(np.mean(np.argmax(probabilities, axis=-1) == labels))
    return loss, accuracy


def evaluate(trained, test_dataset):
    """One comparison row for a `TrainedModel`, evaluated on the test set (plain and with flip TTA)."""
    return evaluate_and_predict(trained, test_dataset)[0]


def evaluate_and_predict(trained, test_dataset):
    """(comparison row, test-set probabilities without TTA), so the analysis needs no second pass."""
    start = time.perf_counter()
    plain, mirrored, labels = forward_passes(trained.model, test_dataset, mirror=True)
    loss, accuracy = loss_and_accuracy(plain, labels)
    _, accuracy_tta = loss_and_accuracy((plain + mirrored) / 2, labels)
    row = {
        "model": trained.name,
        "test_loss": loss,
        "test_accuracy": accuracy,
        "test_accuracy_tta": accuracy_tta,
        "params": int(trained.model.count_params()),
        "epochs": len(trained.history.get("epoch", [])),
        "train_seconds": round(trained.train_seconds, 1),
        "eval_seconds": round(time.perf_counter() - start, 1),
    }
    return row, plain


def markdown_table(rows):
    """The comparison rows as a markdown table, accuracy in percent."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for row in rows:
        cells = [
            row["model"],
            f"{row['test_loss']:.4f}",
            f"{100 * row['test_accuracy']:.2f}%",
            f"{100 * row['test_accuracy_tta']:.2f}%",
            f"{row['params']:,}",
            str(row["epochs"]),
            f"{row['train_seconds']:.0f}",
            f"{row['eval_seconds']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_markdown(rows, paired_table=None):
    """The comparison table, then the models' paired tests (markdown) when there are several."""
    table = markdown_table(rows)
    return f"{table}\n\nPaired tests on the same test images:\n\n{paired_table}" if paired_table else table


def save_comparison(rows, run, markdown=None):
    """Write metrics.json (which marks the run finished), comparison.csv and comparison.md
    (`markdown`, default: the rows' table)."""
    with open(run.file("comparison.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with open(run.file("comparison.md"), "w", encoding="utf-8") as handle:
        handle.write((markdown or markdown_table(rows)) + "\n")
    write_json(run.file("metrics.json"), {row["model"]: row for row in rows})
