"""Figures of the analysis: confusion matrix, reliability diagram, robustness, mistakes, Grad-CAM."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter
from sklearn.metrics import ConfusionMatrixDisplay

from utils.analysis.calibration import ECE_BINS
from utils.analysis.corruptions import SEVERITIES
from utils.plots import image_grid


def confusion_figure(matrix, class_names, model_name):
    """Counts, and each row normalised to the share of that true class."""
    figure, axes = plt.subplots(1, 2, figsize=(17, 7.5))
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    for axis, values, title, fmt in (
        (axes[0], matrix, "counts", "d"),
        (axes[1], shares, "share of each true class", ".2f"),
    ):
        display = ConfusionMatrixDisplay(values, display_labels=list(class_names))
        display.plot(ax=axis, cmap="Blues", values_format=fmt, colorbar=False, xticks_rotation=45)
        axis.set_title(f"{model_name}: {title}")
        axis.set_xlabel("predicted class")
        axis.set_ylabel("true class")
    figure.tight_layout()
    return figure


def reliability_figure(panels, model_name):
    """Accuracy against confidence per bin, one panel per (title, (counts, confidence,
    accuracy), ECE); a hatched gap above a bar is over-confidence, inside it under-confidence."""
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.8), squeeze=False)
    width = 1 / ECE_BINS
    centers = (np.arange(ECE_BINS) + 0.5) * width
    for axis, (title, (counts, confidence, accuracy), ece) in zip(axes.flat, panels):
        filled = counts > 0
        axis.bar(centers[filled], accuracy[filled], width=width, edgecolor="black", label="accuracy")
        axis.bar(
            centers[filled],
            confidence[filled] - accuracy[filled],
            bottom=accuracy[filled],
            width=width,
            fill=False,
            hatch="///",
            edgecolor="tab:red",
            label="gap: confidence - accuracy",
        )
        axis.plot([0, 1], [0, 1], "k--", label="perfect calibration")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.set_xlabel("confidence (top-class probability)")
        axis.set_ylabel("accuracy")
        axis.set_title(f"{title}: ECE {100 * ece:.2f}%")
        axis.legend(loc="upper left", fontsize=8)
    figure.suptitle(f"{model_name}: reliability on the test set ({ECE_BINS} bins)")
    figure.tight_layout()
    return figure


def robustness_figure(results):
    """Accuracy against severity (0 = clean) for each corruption, one line per model.

    Args:
        results: {model name: `corruption_accuracies` result}.
    """
    names = list(next(iter(results.values()))["corruptions"])
    figure, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.6), sharey=True)
    for axis, corruption in zip(axes, names):
        for model_name, result in results.items():
            values = [result["clean"], *result["corruptions"][corruption]]
            axis.plot([0, *SEVERITIES], 100 * np.asarray(values), "o-", label=model_name)
        axis.set_title(corruption.replace("_", " "))
        axis.set_xticks([0, *SEVERITIES])
        axis.set_xlabel("severity (0 = clean)")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_ylim(0, 100)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncols=min(len(results), 5), fontsize=9)
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    return figure


def mistakes_figure(images, labels, probabilities, class_names, model_name):
    """The given wrongly classified images, titled with the true class and the predicted one."""
    titles = [
        f"true {class_names[label]}\n{class_names[p.argmax()]} {100 * p.max():.0f}%"
        for label, p in zip(labels, probabilities)
    ]
    return image_grid(
        images,
        titles,
        title_colors=["red"] * len(images),
        suptitle=f"{model_name}: most confident mistakes (true class, predicted class and probability)",
    )


def gradcam_figure(images, heat_maps, labels, probabilities, class_names, model_name):
    """Each image above its Grad-CAM heat map for the predicted class (red: what drove it)."""
    figure, axes = plt.subplots(2, len(images), figsize=(1.6 * len(images), 3.9), squeeze=False)
    for column, (image, heat, label, p) in enumerate(zip(images, heat_maps, labels, probabilities)):
        color = "green" if p.argmax() == label else "red"
        axes[0, column].imshow(image)
        axes[0, column].set_title(f"true {class_names[label]}", fontsize=8)
        axes[1, column].imshow(image)
        axes[1, column].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        axes[1, column].set_title(f"{class_names[p.argmax()]} {100 * p.max():.0f}%", fontsize=8, color=color)
        for axis in axes[:, column]:
            axis.axis("off")
    figure.suptitle(f"{model_name}: Grad-CAM of the predicted class")
    figure.tight_layout()
    return figure


def per_class_f1_figure(f1_by_model, class_names):
    """F1 per class, one bar per model: where the models differ."""
    figure, axis = plt.subplots(figsize=(12, 4.2))
    width = 0.8 / len(f1_by_model)
    positions = np.arange(len(class_names))
    for index, (model_name, scores) in enumerate(f1_by_model.items()):
        values = [100 * scores[name] for name in class_names]
        axis.bar(positions + (index - (len(f1_by_model) - 1) / 2) * width, values, width, label=model_name)
    axis.set_xticks(positions, class_names, rotation=30)
    axis.set_ylabel("F1 on the test set (%)")
    axis.set_ylim(0, 100)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, ncols=min(len(f1_by_model), 5), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    figure.tight_layout()
    return figure


def pareto_figure(rows, front):
    """Test accuracy against training time of every reported model, one colour and marker each, and the
    Pareto front as a staircase: the best accuracy reached within each training time."""
    figure, axis = plt.subplots(figsize=(11, 5))
    minutes = np.array([row["train_seconds"] / 60 for row in rows])
    accuracy = np.array([100 * row["test_accuracy"] for row in rows])
    colors, markers = plt.get_cmap("tab10").colors, "os^Dv<>P"
    for index, row in enumerate(rows):
        style = {"color": colors[index % 10], "marker": markers[index // 10 % len(markers)]}
        axis.scatter(minutes[index], accuracy[index], s=40, label=f"{row['model']} ({row['run']})", **style)
    ends = [*front, front[-1]]
    axis.step(
        [*minutes[front], minutes.max() * 1.2],
        accuracy[ends],
        where="post",
        color="tab:red",
        label="Pareto front",
    )
    axis.scatter(minutes[front], accuracy[front], s=140, facecolors="none", edgecolors="tab:red")
    axis.set_xscale("log")
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_xlabel("training time (minutes, log scale)")
    axis.set_ylabel("test accuracy (%)")
    axis.grid(alpha=0.3, which="both")
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    figure.tight_layout()
    return figure
