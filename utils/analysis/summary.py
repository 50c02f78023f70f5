"""The analysis of a trained model on the test set: per-class view, calibration, robustness
and Grad-CAM, written into its run sub-folder; and the comparison of several analyses."""

import os
import time

import matplotlib.pyplot as plt
import numpy as np

from models.parts import last_feature_map
from utils.analysis import figures as analysis_plots
from utils.analysis.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
)
from utils.analysis.corruptions import corruption_accuracies
from utils.analysis.gradcam import gradcam
from utils.analysis.per_class import (
    class_scores,
    confident_mistakes,
    confusion,
    most_confused_pairs,
    save_class_scores,
    top_k_accuracy,
)
from utils.data.cifar10 import take_per_class
from utils.plots import save_figure
from utils.runs.folders import read_json, write_json

ANALYSIS_FILE = "analysis.json"
CALIBRATION_FILE = "calibration.json"  # the fitted temperature, read back by predict.py
MISTAKES_SHOWN = 16


def class_probabilities(model, images, batch_size):
    """The model's class probabilities for uint8 `images`, as float64."""
    return np.asarray(model.predict(images.astype(np.float32), batch_size=batch_size, verbose=0), np.float64)


def _save(figure, path):
    save_figure(figure, path)
    plt.close(figure)


def per_class_view(probabilities, test, class_names, model_dir, model_name):
    """Confusion matrix, per-class scores, top-1/top-3 accuracy, confused pairs, mistakes."""
    predicted = probabilities.argmax(axis=1)
    matrix = confusion(test.labels, predicted, len(class_names))
    scores = class_scores(test.labels, predicted, class_names)
    save_class_scores(
        scores, os.path.join(model_dir, "per_class.csv"), os.path.join(model_dir, "per_class.md")
    )
    _save(
        analysis_plots.confusion_figure(matrix, class_names, model_name),
        os.path.join(model_dir, "confusion.png"),
    )
    mistakes = confident_mistakes(probabilities, test.labels, MISTAKES_SHOWN)
    if len(mistakes):
        figure = analysis_plots.mistakes_figure(
            test.images[mistakes], test.labels[mistakes], probabilities[mistakes], class_names, model_name
        )
        _save(figure, os.path.join(model_dir, "mistakes.png"))
    return {
        "top1_accuracy": top_k_accuracy(probabilities, test.labels, 1),
        "top3_accuracy": top_k_accuracy(probabilities, test.labels, 3),
        "f1": {name: scores[name]["f1-score"] for name in class_names},
        "class_scores": scores,
        "confusion_matrix": matrix.tolist(),
        "most_confused": most_confused_pairs(matrix, class_names),
    }


def calibration_view(probabilities, labels, validation_probabilities, validation_labels, model_dir, name):
    """ECE and NLL on the test set, before and after a temperature fitted on the validation
    split (skipped without one); the temperature is saved as CALIBRATION_FILE."""
    before = {
        "ece": expected_calibration_error(probabilities, labels),
        "nll": negative_log_likelihood(probabilities, labels),
    }
    panels = [("as trained", reliability_bins(probabilities, labels), before["ece"])]
    result = {"before": before, "temperature": None, "after": None}
    if validation_probabilities is not None:
        temperature = fit_temperature(validation_probabilities, validation_labels)
        scaled = apply_temperature(probabilities, temperature)
        after = {
            "ece": expected_calibration_error(scaled, labels),
            "nll": negative_log_likelihood(scaled, labels),
        }
        panels.append((f"temperature {temperature:.2f}", reliability_bins(scaled, labels), after["ece"]))
        result.update(temperature=temperature, after=after)
        result["validation_nll"] = {
            "before": negative_log_likelihood(validation_probabilities, validation_labels),
            "after": negative_log_likelihood(
                apply_temperature(validation_probabilities, temperature), validation_labels
            ),
        }
        write_json(
            os.path.join(model_dir, CALIBRATION_FILE),
            {"temperature": temperature, "fitted_on": "validation split", "test_ece_after": after["ece"]},
        )
    _save(analysis_plots.reliability_figure(panels, name), os.path.join(model_dir, "reliability.png"))
    return result


def saved_temperature(model_dir):
    """The temperature fitted for the model in `model_dir`, or None if none was fitted."""
    calibration = read_json(os.path.join(model_dir, CALIBRATION_FILE))
    return None if calibration is None else float(calibration["temperature"])


def robustness_view(model, test, per_class, batch_size, seed, model_dir, model_name):
    """Accuracy under every corruption and severity on the first `per_class` test images of
    each class (None: the whole test set); one figure of accuracy against severity."""
    subset = test if per_class is None else take_per_class(test, per_class)
    result = corruption_accuracies(
        lambda images: class_probabilities(model, images, batch_size).argmax(axis=1),
        subset.images,
        subset.labels,
        seed,
    )
    result["images"] = len(subset)
    _save(analysis_plots.robustness_figure({model_name: result}), os.path.join(model_dir, "robustness.png"))
    return result


def explanation_view(model, test, probabilities, class_names, model_dir, model_name):
    """Grad-CAM of the predicted class for the first test image of every class."""
    shown = np.array([np.flatnonzero(test.labels == c)[0] for c in np.unique(test.labels)])
    feature_map = last_feature_map(model)
    heat_maps = gradcam(model, test.images[shown], feature_map=feature_map)
    figure = analysis_plots.gradcam_figure(
        test.images[shown], heat_maps, test.labels[shown], probabilities[shown], class_names, model_name
    )
    _save(figure, os.path.join(model_dir, "gradcam.png"))
    return {"layer": feature_map.name, "feature_map": list(feature_map.shape), "images": shown.tolist()}


def analyse_model(
    model, name, data, model_dir, *, batch_size, seed, robustness_per_class=None, test_probabilities=None
):
    """Every analysis of one trained model; figures and tables go into `model_dir`.

    Args:
        data: the run's `Cifar10` splits (validation for the temperature, test for the rest).
        robustness_per_class: test images per class for the corruption check (None: all).
        test_probabilities: the model's test-set probabilities if already computed.

    Returns:
        The summary, also written to ANALYSIS_FILE, with the seconds each part took.
    """
    seconds, start = {}, time.perf_counter()
    if test_probabilities is None:
        test_probabilities = class_probabilities(model, data.test.images, batch_size)
    seconds["predictions"] = time.perf_counter() - start
    summary = {"model": name}

    def timed(part, compute):
        begin = time.perf_counter()
        summary[part] = compute()
        seconds[part] = time.perf_counter() - begin

    timed(
        "per_class", lambda: per_class_view(test_probabilities, data.test, data.class_names, model_dir, name)
    )
    validation = data.validation
    timed(
        "calibration",
        lambda: calibration_view(
            test_probabilities,
            data.test.labels,
            None if validation is None else class_probabilities(model, validation.images, batch_size),
            None if validation is None else validation.labels,
            model_dir,
            name,
        ),
    )
    timed(
        "robustness",
        lambda: robustness_view(model, data.test, robustness_per_class, batch_size, seed, model_dir, name),
    )
    timed(
        "gradcam",
        lambda: explanation_view(model, data.test, test_probabilities, data.class_names, model_dir, name),
    )
    summary["seconds"] = {
        **{k: round(v, 2) for k, v in seconds.items()},
        "total": round(time.perf_counter() - start, 2),
    }
    write_json(os.path.join(model_dir, ANALYSIS_FILE), summary)
    return summary


def _percent(value):
    return "—" if value is None else f"{100 * value:.2f}%"


def analysis_table(summaries):
    """One markdown row per analysed model: accuracy, calibration, robustness, weakest class."""
    lines = [
        "| model | top-1 | top-3 | ECE | ECE after T | T | test NLL | NLL after T | mean corruption acc. "
        "| weakest class (F1) | most confused pair |",
        "|" + " --- |" * 11,
    ]
    for summary in summaries:
        calibration, f1 = summary["calibration"], summary["per_class"]["f1"]
        after = calibration["after"] or {}
        weakest = min(f1, key=f1.get)
        pairs = summary["per_class"]["most_confused"]
        pair = f"{' / '.join(pairs[0]['classes'])} ({pairs[0]['errors']})" if pairs else "—"
        temperature = calibration["temperature"]
        cells = [
            summary["model"],
            _percent(summary["per_class"]["top1_accuracy"]),
            _percent(summary["per_class"]["top3_accuracy"]),
            _percent(calibration["before"]["ece"]),
            _percent(after.get("ece")),
            "—" if temperature is None else f"{temperature:.2f}",
            f"{calibration['before']['nll']:.3f}",
            "—" if not after else f"{after['nll']:.3f}",
            _percent(summary["robustness"]["mean"]),
            f"{weakest} ({100 * f1[weakest]:.1f}%)",
            pair,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def f1_differences(baseline, other):
    """{class: F1 of `other` minus F1 of `baseline`}, largest gain first."""
    gains = {name: other["per_class"]["f1"][name] - f1 for name, f1 in baseline["per_class"]["f1"].items()}
    return dict(sorted(gains.items(), key=lambda item: -item[1]))


def compare_analyses(summaries, class_names, run):
    """Write the run's analysis table (analysis.md) and the figures that put every model side
    by side: per-class F1 (per_class_f1.png) and accuracy under corruption (robustness.png).

    Returns:
        The markdown table.
    """
    table = analysis_table(summaries)
    with open(run.file("analysis.md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    f1 = {summary["model"]: summary["per_class"]["f1"] for summary in summaries}
    _save(analysis_plots.per_class_f1_figure(f1, class_names), run.file("per_class_f1.png"))
    robustness = {summary["model"]: summary["robustness"] for summary in summaries}
    _save(analysis_plots.robustness_figure(robustness), run.file("robustness.png"))
    return table


SIGNIFICANT = 0.05  # a per-class difference is marked when McNemar's p on that class is below this


def _gains_text(gains, class_p_values):
    def mark(name):
        return "*" if class_p_values.get(name, 1.0) < SIGNIFICANT else ""

    return ", ".join(f"{name} ({100 * gain:+.1f}{mark(name)})" for name, gain in gains)


def analysis_conclusions(summaries, scratch=None, pretrained=None, class_p_values=None):
    """Sentences for a conclusion, computed from the analyses: where the pretrained model beats
    the from-scratch one per class (both named by model; a class whose paired test `class_p_values`
    finds the two apart is starred), calibration and robustness."""
    by_name = {summary["model"]: summary for summary in summaries}
    lines = []
    if scratch in by_name and pretrained in by_name:
        gains = list(f1_differences(by_name[scratch], by_name[pretrained]).items())
        p_values = class_p_values or {}
        lines.append(
            f"Per class (F1 points of {pretrained} minus {scratch}), transfer learning helps most on "
            f"{_gains_text(gains[:3], p_values)} and least on {_gains_text(gains[:-4:-1], p_values)}"
            + (
                f" (*: the two differ on that class's test images, McNemar p < {SIGNIFICANT})."
                if class_p_values is not None
                else "."
            )
        )
    for summary in summaries:
        calibration = summary["calibration"]
        text = f"{summary['model']}: ECE {100 * calibration['before']['ece']:.1f}%"
        if calibration["temperature"] is not None:
            text += (
                f", {100 * calibration['after']['ece']:.1f}% after temperature scaling "
                f"(T = {calibration['temperature']:.2f}, "
                f"{'over' if calibration['temperature'] > 1 else 'under'}-confident as trained)"
            )
        lines.append(text + f"; {100 * summary['robustness']['mean']:.1f}% mean accuracy under corruptions.")
    if summaries:
        robust = max(summaries, key=lambda summary: summary["robustness"]["mean"])
        lines.append(f"Most robust to the corruptions: {robust['model']}.")
    return lines
