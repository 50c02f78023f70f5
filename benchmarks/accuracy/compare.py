"""Compare two time-to-accuracy records: speed-up to each accuracy and accuracy at equal budgets.

    python -m benchmarks.accuracy.compare benchmarks/results/time_to_accuracy/fast_cnn.json \\
        benchmarks/results/time_to_accuracy/original_lenet.json \\
        --out benchmarks/results/compare/fast_vs_original.json

When the baseline never reached an accuracy, the speed-up is a lower bound: the
baseline's whole training time divided by ours (marked `"lower_bound": true`).
"""

import argparse
import json

from benchmarks.common import write_record  # noqa: E402


def speedup(ours, baseline, threshold):
    """Baseline seconds over ours to reach `threshold`; None when we never reached it."""
    our_seconds = ours["time_to_accuracy"].get(threshold)
    if our_seconds is None:
        return None
    their_seconds = baseline["time_to_accuracy"].get(threshold)
    if their_seconds is None:
        return {"ratio": round(baseline["train_seconds"] / our_seconds, 2), "lower_bound": True}
    return {"ratio": round(their_seconds / our_seconds, 2), "lower_bound": False}


def compare(ours, baseline):
    """The comparison record of `ours` against `baseline` (both time-to-accuracy records)."""
    names = {
        "ours": f"{ours['model']} ({ours['preset']})",
        "baseline": f"{baseline['model']} ({baseline['preset']})",
    }
    return {
        **names,
        "speedup_to_accuracy": {t: speedup(ours, baseline, t) for t in ours["time_to_accuracy"]},
        "accuracy_within_seconds": {
            budget: {"ours": ours["accuracy_within_seconds"][budget], "baseline": accuracy}
            for budget, accuracy in baseline["accuracy_within_seconds"].items()
        },
        "test_accuracy": {"ours": ours["test_accuracy"], "baseline": baseline["test_accuracy"]},
        "train_seconds": {"ours": ours["train_seconds"], "baseline": baseline["train_seconds"]},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ours", help="record of the recipe being compared")
    parser.add_argument("baseline", help="record of the reference recipe")
    parser.add_argument("--out", required=True, help="comparison JSON to write")
    options = parser.parse_args(argv)
    records = []
    for path in (options.ours, options.baseline):
        with open(path, encoding="utf-8") as handle:
            records.append(json.load(handle))
    result = compare(*records)
    result = write_record(options.out, result)
    for threshold, value in result["speedup_to_accuracy"].items():
        if value is not None:
            bound = ">= " if value["lower_bound"] else ""
            print(f"to {threshold}: {bound}{value['ratio']}x faster")
    for budget, pair in result["accuracy_within_seconds"].items():
        print(f"within {budget} s: {pair['ours']} vs {pair['baseline']}")
    return result


if __name__ == "__main__":
    main()
