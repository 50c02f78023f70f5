"""Side by side: `fast_cnn` against the published airbench94 recipe in PyTorch, in one run.

    python -m benchmarks.reference.versus_reference --data PATH --torch-python /path/to/python \\
        --seeds 0 1 --out benchmarks/results/versus_reference/versus_reference.json

Both sides train on the same data copy on the same machine, each seed in a fresh process,
the sides alternating (seed 0: reference first; seed 1: ours first) so that a drift of the
machine's speed hits both. Training time means the same for both: the training loop from its
first step to its last (graph tracing included), with the images already in memory; loading
the data, fitting the whitening layer, building the input pipeline and the per-epoch test
evaluations are left out (and recorded apart for our side as `data_seconds`).

The record gives each side's test accuracy, flip-TTA accuracy and training time (means over
the seeds, and every run in full), our time to the reference's final accuracy (plain, and with
flip TTA against its flip-TTA accuracy: per epoch, the means over our seeds), and the ratios the
target is stated in. `--torch-python` is any Python with torch and numpy (torch is not a
dependency of the project); `--preset` picks our side's recipe (fast or fast_muon), `--set`
overrides its args, `--reference-epochs` shortens both recipes alike (for tests and quick looks,
not for the record). Both sides train on all 50,000 training images.

`--resume` continues the record at `--out`: the seeds it holds are kept (they must be the first
of `--seeds`, made with the same options on the same kind of machine) and the rest run, each
seed's two sides back to back as always, so a record too long for one sitting can be finished
in the next.

`--from-records REFERENCE_JSON OURS_JSON` (once per seed) trains nothing: it compares a
reference record and a `time_to_accuracy.py` record (`--model fast_cnn --preset fast --set
val_fraction=0`) made apart on the same machine; the record names them in `made_from_records`.
"""

import argparse
import os
import subprocess
import sys
import tempfile

from benchmarks.common import ROOT, write_record  # noqa: E402
from benchmarks.reference import reference_airbench_torch  # noqa: E402
from utils.config.settings import PRESETS  # noqa: E402
from utils.runs.folders import read_json  # noqa: E402

REFERENCE_MODULE = "benchmarks.reference.reference_airbench_torch"
OURS_MODULE = "benchmarks.accuracy.time_to_accuracy"
OUR_PRESETS = tuple(name for name, recipe in PRESETS.items() if recipe["models"] == ["fast_cnn"])
TIMING = (
    "the training loop only, images in memory; data loading, whitening fit, input pipeline "
    "and per-epoch test evaluations left out"
)


def reference_command(options, inputs, seed, out):
    """The command line that trains the reference once."""
    return [
        options.torch_python,
        "-m",
        REFERENCE_MODULE,
        "train",
        "--inputs",
        inputs,
        "--seed",
        str(seed),
        "--precision",
        options.reference_precision,
        "--epochs",
        str(options.reference_epochs),
        "--out",
        out,
    ]


def ours_command(options, seed, out):
    """The command line that trains `fast_cnn` (with `--preset`) once, on all 50,000 training
    images as the reference does (no validation split)."""
    command = [
        sys.executable,
        "-m",
        OURS_MODULE,
        "--data",
        options.data,
        "--model",
        "fast_cnn",
        "--preset",
        options.preset,
    ]
    command += ["--seeds", str(seed), "--out", out, "--runs-dir", options.runs_dir, "--set", "val_fraction=0"]
    if options.reference_epochs != reference_airbench_torch.RECIPE["epochs"]:
        command += ["--set", f"epochs={max(round(options.reference_epochs), 1)}"]
    for text in options.set:
        command += ["--set", text]
    return command + (["--tiny"] if options.tiny else [])


def run_side(command):
    """Run one side's command; its output goes to this process's, a failure stops the benchmark."""
    print("$", " ".join(command), flush=True)
    completed = subprocess.run(command, check=False, cwd=ROOT)
    if completed.returncode != 0:
        raise SystemExit(f"versus_reference: this command failed (exit {completed.returncode}): {command}")


def reference_run(record):
    """One reference run in the comparison's terms (its record times the training loop only)."""
    return {
        "seed": record["seeds"][0],
        "test_accuracy": record["test_accuracy"],
        "test_accuracy_tta": record["test_accuracy_tta"],
        "test_accuracy_tta_translate": record["test_accuracy_tta_translate"],
        "train_seconds": round(record["train_seconds"], 1),
        "precision": record["precision"],
        "recipe_epochs": record["recipe"]["epochs"],
        "epochs": [{"seconds": e["seconds"], "test_accuracy": e["test_accuracy"]} for e in record["epochs"]],
    }


def ours_run(record):
    """One run of ours in the comparison's terms: the training loop only, data preparation apart."""
    run = record["runs"][0]
    return {
        "seed": run["seed"],
        "test_accuracy": run["test_accuracy"],
        "test_accuracy_tta": run["test_accuracy_tta"],
        "train_seconds": round(sum(epoch["seconds"] for epoch in run["epochs"]), 1),
        "data_seconds": run["data_seconds"],
        "train_images": run["train_images"],
        "preset": record["preset"],
        "overrides": record["overrides"],
        "epochs": [
            {key: epoch.get(key) for key in ("seconds", "test_accuracy", "test_accuracy_tta")}
            for epoch in run["epochs"]
        ],
    }


def mean_curve(runs, key):
    """Per epoch (as far as the shortest run goes): (mean training seconds to its end, mean of
    its `key` accuracy) over `runs`."""
    curve = []
    for index in range(min(len(run["epochs"]) for run in runs)):
        seconds = mean([sum(epoch["seconds"] for epoch in run["epochs"][: index + 1]) for run in runs])
        curve.append((seconds, mean([run["epochs"][index].get(key) for run in runs])))
    return curve


def seconds_to_reach(curve, accuracy):
    """Mean training seconds to the end of the first epoch whose mean accuracy reaches `accuracy`."""
    return next((round(s, 1) for s, reached in curve if reached is not None and reached >= accuracy), None)


def mean(values):
    return None if not values or any(v is None for v in values) else round(sum(values) / len(values), 4)


def ratio(seconds, reference_seconds):
    """`seconds` as a fraction of the reference's (None when we never got there)."""
    return None if seconds is None else round(seconds / reference_seconds, 3)


def side_summary(runs):
    """Means over one side's seeds of the compared figures."""
    keys = ("test_accuracy", "test_accuracy_tta", "train_seconds")
    return {key: mean([run[key] for run in runs]) for key in keys}


def compare(reference_runs, our_runs):
    """The comparison: each side's means, our time to the reference's final accuracy, the ratios.

    The bars are the reference's final accuracies, without TTA and with flip TTA (means over
    its seeds); our mean per-epoch test accuracy (over our seeds), measured the same way, is held
    to each, and the time to the first epoch that reaches it is our mean training time to there.
    """
    reference, ours = side_summary(reference_runs), side_summary(our_runs)
    times = {}
    for key, name in (("test_accuracy", "accuracy"), ("test_accuracy_tta", "tta_accuracy")):
        seconds = seconds_to_reach(mean_curve(our_runs, key), reference[key])
        times[f"ours_seconds_to_reference_{name}"] = seconds
        times[f"ratio_time_to_reference_{name}"] = ratio(seconds, reference["train_seconds"])
    return {
        "reference": reference,
        "ours": ours,
        "reference_final_accuracy": reference["test_accuracy"],
        "reference_final_tta_accuracy": reference["test_accuracy_tta"],
        **times,
        "ratio_train_seconds": ratio(ours["train_seconds"], reference["train_seconds"]),
        "tta_accuracy_difference": round(ours["test_accuracy_tta"] - reference["test_accuracy_tta"], 4),
    }


def parse_command_line(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="CIFAR-10 archive or folder, for both sides")
    parser.add_argument("--torch-python", help="a Python with torch and numpy")
    parser.add_argument(
        "--from-records",
        nargs=2,
        action="append",
        metavar=("REFERENCE_JSON", "OURS_JSON"),
        help="train nothing: compare a reference record with a time_to_accuracy record of one seed each, "
        "made apart on this machine (repeat for more seeds)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", required=True, help="JSON record to write")
    parser.add_argument("--reference-precision", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--reference-epochs", type=float, default=reference_airbench_torch.RECIPE["epochs"])
    parser.add_argument("--preset", choices=OUR_PRESETS, default="fast", help="our side's recipe")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="our side's args")
    parser.add_argument("--runs-dir", default=os.path.join("runs", "benchmarks"), help="our run folders")
    parser.add_argument("--tiny", action="store_true", help="small_run data for our side (for tests)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the seeds the record at --out holds and run the rest (same options, same kind of machine)",
    )
    options = parser.parse_args(argv)
    if not options.from_records and not (options.data and options.torch_python):
        parser.error("--data and --torch-python are needed unless --from-records is given")
    return options


def versus_record(options, reference_runs, our_runs):
    """The record of the seeds run so far."""
    from benchmarks.common import machine_description

    return {
        "seeds": [run["seed"] for run in our_runs],
        **compare(reference_runs, our_runs),
        "timing": TIMING,
        "made_from_records": options.from_records,  # null: both sides trained in this run
        "reference_precision": reference_runs[0]["precision"],
        "reference_epochs": reference_runs[0]["recipe_epochs"],
        "ours_preset": our_runs[0]["preset"],
        "ours_overrides": our_runs[0]["overrides"],
        "set": options.set,
        "machine": machine_description(),
        "reference_runs": reference_runs,
        "our_runs": our_runs,
    }


def run_seed(options, inputs, seed, reference_first, scratch):
    """(reference run, our run) of one seed, the sides in the order asked for."""
    reference_out, our_out = (os.path.join(scratch, f"{side}-{seed}.json") for side in ("ref", "ours"))
    sides = [
        (reference_command(options, inputs, seed, reference_out), reference_out, reference_run),
        (ours_command(options, seed, our_out), our_out, ours_run),
    ]
    for command, _, _ in sides if reference_first else sides[::-1]:
        run_side(command)
    return tuple(convert(read_json(out)) for _, out, convert in sides)


def record_from_records(options):
    """The record of `--from-records` pairs (nothing trained)."""
    pairs = [(reference_run(read_json(ref)), ours_run(read_json(ours))) for ref, ours in options.from_records]
    return versus_record(options, [ref for ref, _ in pairs], [ours for _, ours in pairs])


def finished_runs(options):
    """(reference runs, our runs) of the seeds the record at --out holds, for --resume: they must be
    the first of --seeds, made by this benchmark with the same options on this kind of machine."""
    from benchmarks.common import refuse_other_machine

    record = read_json(options.out, default=None) if options.resume else None
    if record is None:
        return [], []
    done = record["seeds"]
    mismatches = {
        "made from records": (record["made_from_records"], None),
        "seeds": (done, options.seeds[: len(done)]),
        "reference precision": (record["reference_precision"], options.reference_precision),
        "reference epochs": (record["reference_epochs"], options.reference_epochs),
        "--preset": (record.get("ours_preset", "fast"), options.preset),
        "--set": (record.get("set"), options.set),
    }
    wrong = {name: pair for name, pair in mismatches.items() if pair[0] != pair[1]}
    if wrong:
        said = "; ".join(f"{name}: {there!r} there, {here!r} here" for name, (there, here) in wrong.items())
        raise SystemExit(f"--resume cannot continue {options.out}: {said}. Start a new --out instead.")
    refuse_other_machine(record["machine"], options.out, "--resume continues only on its kind of machine.")
    return record["reference_runs"], record["our_runs"]


def run_both_sides(options):
    """Train every seed on both sides (after those --resume keeps), rewriting the record after
    each, so an interruption keeps the seeds already finished; returns the last record."""
    reference_runs, our_runs = finished_runs(options)
    with tempfile.TemporaryDirectory() as scratch:
        inputs = os.path.join(scratch, "cifar10.npz")
        reference_airbench_torch.data_step(options.data, inputs)
        for position, seed in list(enumerate(options.seeds))[len(our_runs) :]:
            reference, ours = run_seed(options, inputs, seed, position % 2 == 0, scratch)
            reference_runs.append(reference)
            our_runs.append(ours)
            record = versus_record(options, reference_runs, our_runs)
            record = write_record(options.out, record)
    return record


def main(argv=None):
    options = parse_command_line(argv)
    if options.from_records:
        record = record_from_records(options)
        record = write_record(options.out, record)
    else:
        record = run_both_sides(options)
    print(
        f"reference {record['reference']} | fast_cnn {record['ours']} | time to the reference's accuracy: "
        f"{record['ratio_time_to_reference_accuracy']}x the reference's training time (with flip TTA: "
        f"{record['ratio_time_to_reference_tta_accuracy']}x)"
    )
    return record


if __name__ == "__main__":
    main()
