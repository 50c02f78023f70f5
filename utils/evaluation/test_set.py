"""Test-set evaluation of trained models and the comparison table."""

import csv
import time

import numpy as np

from utils.runs.folders import write_json

COLUMNS = (
    "model",
    "seed",
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
        "seed": trained.seed,
        "test_loss": loss,
        "test_accuracy": accuracy,
        "test_accuracy_tta": accuracy_tta,
        "params": int(trained.model.count_params()),
        "epochs": len(trained.history.get("epoch", [])),
        "train_seconds": round(trained.train_seconds, 1),
        "eval_seconds": round(time.perf_counter() - start, 1),
    }
    return row, plain


def row_label(row):
    """A comparison row's model, with its seed when the run has several (`TrainedModel.label`)."""
    return row["model"] if row.get("seed") is None else f"{row['model']} seed {row['seed']}"


def markdown_table(rows):
    """The comparison rows as a markdown table (the model cell with its seed), accuracy in percent."""
    header = [column for column in COLUMNS if column != "seed"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        cells = [
            row_label(row),
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


def comparison_markdown(rows, paired_table=None, spread_tables=None):
    """The comparison table, then the models' paired tests (markdown) when there are several; with
    several seeds, (spread table, differences over seeds table) come first."""
    parts = []
    if spread_tables:
        spread, over_seeds = spread_tables
        parts += [f"Over the seeds:\n\n{spread}"] + (
            [f"Differences over the seeds:\n\n{over_seeds}"] if over_seeds else []
        )
        parts.append(f"Each seed:\n\n{markdown_table(rows)}")
    else:
        parts.append(markdown_table(rows))
    if paired_table:
        parts.append(f"Paired tests on the same test images:\n\n{paired_table}")
    return "\n\n".join(parts)


def save_comparison(rows, run, markdown=None):
    """Write metrics.json (which marks the run finished), comparison.csv and comparison.md
    (`markdown`, default: the rows' table)."""
    with open(run.file("comparison.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with open(run.file("comparison.md"), "w", encoding="utf-8") as handle:
        handle.write((markdown or markdown_table(rows)) + "\n")
    write_json(run.file("metrics.json"), {row_label(row): row for row in rows})
