"""Pieces of a benchmark record that need no TensorFlow, so torch-side scripts share them."""

THRESHOLDS = ("0.80", "0.90", "0.93", "0.94")


def time_to_accuracy(epochs, start_seconds):
    """Training seconds until test accuracy first reaches each threshold, counting `start_seconds`
    (data preparation, feature extraction) spent before the first epoch."""
    reached, elapsed = dict.fromkeys(THRESHOLDS), start_seconds
    for epoch in epochs:
        elapsed += epoch["seconds"]
        for threshold in THRESHOLDS:
            if reached[threshold] is None and epoch["test_accuracy"] >= float(threshold):
                reached[threshold] = round(elapsed, 1)
    return reached
