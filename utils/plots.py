"""Figures: sample grids, augmentation preview, learning curves and their overlay."""

import math

import matplotlib.pyplot as plt
import numpy as np


def image_grid(images, titles, columns=8, title_colors=None, suptitle=None):
    """A grid of uint8-range images with a title over each (rows grow with its lines), and an
    optional figure title."""
    rows = math.ceil(len(images) / columns)
    title_lines = max(title.count("\n") + 1 for title in titles)
    row_height = 1.6 + 0.3 * title_lines
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, row_height * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(images):
            axis.imshow(np.clip(np.asarray(images[index]), 0, 255).astype(np.uint8))
            color = title_colors[index] if title_colors else "black"
            axis.set_title(titles[index], fontsize=8, color=color)
    if suptitle:
        figure.suptitle(suptitle)
    figure.tight_layout()
    return figure


def samples_figure(split, class_names, per_class=4):
    """`per_class` training images of every class, one class per column."""
    picks = [np.flatnonzero(split.labels == c)[:per_class] for c in range(len(class_names))]
    order = [
        picks[c][row] for row in range(per_class) for c in range(len(class_names)) if row < len(picks[c])
    ]
    return image_grid(
        split.images[order], [class_names[split.labels[i]] for i in order], columns=len(class_names)
    )


def augmentation_figure(images, augmenter, copies=7):
    """Each row: an original image, then `copies` augmented versions of it."""
    shown, titles = [], []
    for image in images:
        batch = np.repeat(image[None].astype(np.float32), copies, axis=0)
        augmented = np.asarray(augmenter(batch, training=True)) if augmenter else batch
        shown += [image, *augmented]
        titles += ["original"] + ["augmented"] * copies
    return image_grid(shown, titles, columns=copies + 1)


def predictions_figure(images, labels, predicted, class_names, model_name):
    """Test images titled with the true class over the predicted one, green where right, red where wrong."""
    titles = [f"{class_names[t]}\n{class_names[p]}" for t, p in zip(labels, predicted)]
    colors = ["green" if t == p else "red" for t, p in zip(labels, predicted)]
    return image_grid(images, titles, title_colors=colors, suptitle=f"{model_name}: true / predicted class")


def _plot_metric(axis, trained, metric, label_prefix=""):
    epochs = np.asarray(trained.history["epoch"]) + 1
    for prefix, style in (("", "-"), ("val_", "--")):
        if prefix + metric in trained.history:
            split = "validation" if prefix else "train"
            axis.plot(epochs, trained.history[prefix + metric], style, label=f"{label_prefix}{split}")
    if trained.fine_tune_start_epoch is not None:
        axis.axvline(
            trained.fine_tune_start_epoch + 0.5, color="gray", linestyle=":", label="fine-tuning starts"
        )
    axis.set_xlabel("epoch")
    axis.set_ylabel(metric)
    axis.grid(alpha=0.3)


def history_figure(trained):
    """Loss and accuracy, train vs validation, for one `TrainedModel`."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        _plot_metric(axis, trained, metric)
        axis.legend()
    figure.suptitle(trained.label)
    figure.tight_layout()
    return figure


def _curve_key(trained, metric):
    """The validation curve of `metric`, or the training one without a validation split."""
    return f"val_{metric}" if f"val_{metric}" in trained.history else metric


def seed_band_figure(seeds):
    """One model trained with several seeds: each seed's validation (or train) loss and accuracy,
    their mean and their range as a band, over the epochs all seeds have."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        key = _curve_key(seeds[0], metric)
        length = min(len(trained.history[key]) for trained in seeds)
        curves = np.array([trained.history[key][:length] for trained in seeds], dtype=float)
        epochs = np.arange(1, length + 1)
        for trained, curve in zip(seeds, curves):
            axis.plot(epochs, curve, linewidth=0.8, alpha=0.5, label=f"seed {trained.seed}")
        axis.fill_between(epochs, curves.min(axis=0), curves.max(axis=0), alpha=0.2, label="range")
        axis.plot(epochs, curves.mean(axis=0), color="black", label=f"mean ({key})")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(f"{seeds[0].name}: {len(seeds)} seeds")
    figure.tight_layout()
    return figure


def overlay_figure(trained_models):
    """Validation (or train, without a validation split) curves of every model together."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for trained in trained_models:
            key = _curve_key(trained, metric)
            axis.plot(
                np.asarray(trained.history["epoch"]) + 1,
                trained.history[key],
                label=f"{trained.label} ({key})",
            )
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return figure


def save_figure(figure, path):
    figure.savefig(path, dpi=100, bbox_inches="tight")


def schedule_figure(epochs, rates):
    """Learning rate against epoch, as planned before training."""
    figure, axis = plt.subplots(figsize=(6, 3))
    axis.plot(epochs, rates)
    axis.set_xlabel("epoch")
    axis.set_ylabel("learning rate")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure
