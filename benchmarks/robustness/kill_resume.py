"""Interruption benchmark: kill train.py at random moments, rerun the same command, check nothing is lost.

    python -m benchmarks.robustness.kill_resume --data PATH --kills 30 \\
        --out benchmarks/results/kill_resume/kill_resume.json

train.py runs as a subprocess on a small subset of CIFAR-10 (written as an official-format
archive), is killed with SIGINT or SIGKILL after a random delay, and is started again with the
same command until it finishes by itself; rounds of fresh runs follow until `--kills` kills have
landed. Where each kill landed (start-up, epoch N, testing and analysis) is read from the run
folder just before the signal. The finished run must have exactly one history row per epoch, a
best.keras that loads, that no epoch in history.csv beats on validation and that gives the test
loss and accuracy metrics.json records, and one run folder; the record counts kills, landings,
resumes and failures.
"""

import argparse
import csv
import io
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

from benchmarks.common import ROOT, machine_description, write_record  # noqa: E402
from utils.data.cifar10 import (  # noqa: E402
    BATCH_FOLDER,
    TEST_BATCH,
    TRAIN_BATCHES,
    load_cifar10,
    take_per_class,
)
from utils.runs.folders import read_json  # noqa: E402

MODEL = "lenet"
SIGNALS = {"SIGINT": signal.SIGINT, "SIGKILL": signal.SIGKILL}


def write_subset_archive(data_path, per_class, path):
    """An official-format archive of the first `per_class` training and test images of each class."""
    train, test = load_cifar10(data_path)
    train, test = take_per_class(train, per_class), take_per_class(test, per_class)
    parts = np.array_split(np.arange(len(train)), len(TRAIN_BATCHES))
    batches = {name: (train.images[part], train.labels[part]) for name, part in zip(TRAIN_BATCHES, parts)}
    batches[TEST_BATCH] = (test.images, test.labels)
    with tarfile.open(path, "w:gz") as archive:
        for name, (images, labels) in batches.items():
            rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
            raw = pickle.dumps({b"data": rows, b"labels": labels.tolist()}, protocol=2)
            info = tarfile.TarInfo(f"{BATCH_FOLDER}/{name}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return path


def train_command(data_path, output_dir, epochs):
    settings = {
        "data_path": data_path,
        "output_dir": output_dir,
        "run_name": "killed",
        "models": MODEL,
        "epochs": epochs,
        "batch_size": 32,
        "precision": "float32",
        "verbose": 0,
    }
    sets = [item for key, value in settings.items() for item in ("--set", f"{key}={value}")]
    return [sys.executable, os.path.join(ROOT, "train.py"), *sets]


def landing(run_dir):
    """Where the run is, from its folder: start-up, epoch N (from 1), testing and analysis (which
    includes a rerun's start-up once training is done), or finished (metrics.json written, the
    process exiting)."""
    if os.path.isfile(os.path.join(run_dir, "metrics.json")):
        return "finished"
    state = read_json(os.path.join(run_dir, MODEL, "state.json"), default={"phases": {}})
    if state["phases"].get("train", {}).get("done"):
        return "testing and analysis"
    rows = history_epochs(run_dir)
    return f"epoch {len(rows) + 1}" if state["phases"] else "start-up"


def history_column(run_dir, name):
    """A column of history.csv as written (floats), repeats included."""
    path = os.path.join(run_dir, MODEL, "history.csv")
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [float(row[name]) for row in csv.DictReader(handle)]


def history_epochs(run_dir):
    """The epoch column of history.csv as written, repeats included."""
    return [int(epoch) for epoch in history_column(run_dir, "epoch")]


def error_tail(log_path, lines=15):
    """The last `lines` lines of a process's stderr, to say why it failed."""
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        return handle.read().splitlines()[-lines:]


def run_with_kills(command, run_dir, kills, delays, seed, log_path):
    """Start `command` again and again, killing it `kills` times after random `delays` (seconds,
    low and high), until the run is finished (its metrics.json written; a rerun then refuses to
    overwrite it) or a process exits by itself. Returns the kill events, the exit code of the
    last process that was not killed (0 when the run finished under a kill) and, when that
    code is not 0, the end of its stderr (each process writes it to `log_path`)."""
    rng = np.random.default_rng(seed)
    events, env = [], {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}

    def ended(code):
        return events, code, error_tail(log_path) if code else []

    while True:
        if landing(run_dir) == "finished":
            return ended(0)
        with open(log_path, "w", encoding="utf-8") as log:
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        if len(events) >= kills:
            return ended(process.wait())
        name = rng.choice(sorted(SIGNALS))
        try:
            process.wait(timeout=rng.uniform(*delays))
        except subprocess.TimeoutExpired:
            where = landing(run_dir)
            process.send_signal(SIGNALS[name])
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:  # a SIGINT not acted on: counted as not stopping
                process.kill()
                process.wait()
                where += " (SIGINT ignored, killed)"
            events.append({"signal": str(name), "landed": where, "exit_code": process.returncode})
            continue
        return ended(process.returncode)


def check_run(output_dir, run_dir, epochs):
    """What must hold after the last rerun; returns {check: passed}."""
    import keras

    import models  # noqa: F401  (the custom classes of the saved model)
    from utils.config.resolve import resolve_args
    from utils.evaluation.test_set import loss_and_accuracy
    from utils.runs.folders import read_run_args
    from utils.steps import load_data, make_datasets

    metrics = read_json(os.path.join(run_dir, "metrics.json"), default={})
    model_path = os.path.join(run_dir, MODEL, "best.keras")
    checks = {
        "one_run_folder": os.listdir(output_dir) == [os.path.basename(run_dir)],
        "metrics_written": MODEL in metrics,
        "one_history_row_per_epoch": history_epochs(run_dir) == list(range(epochs)),
        "best_model_loads": os.path.isfile(model_path),
    }
    if checks["best_model_loads"] and checks["metrics_written"]:
        args = resolve_args(read_run_args(run_dir))
        data = load_data(args)
        best = keras.models.load_model(model_path)
        # No epoch in history.csv may beat best.keras (a stale or missing checkpoint would).
        validation_loss = best.evaluate(make_datasets(data, args).validation, verbose=0)[0]
        lowest_recorded = min(history_column(run_dir, "val_loss"))
        checks["best_model_is_the_best_epoch"] = validation_loss <= lowest_recorded * (1 + 1e-4)
        test = data.test
        probabilities = best.predict(test.images.astype(np.float32), verbose=0)
        loss, accuracy = loss_and_accuracy(probabilities, test.labels)
        recorded = metrics[MODEL]
        # Round-off in another process may flip a near tie of two classes: one image's worth of
        # accuracy is allowed; the loss tells a different checkpoint apart.
        checks["best_model_gives_the_recorded_loss"] = abs(loss - recorded["test_loss"]) <= 1e-4 * loss
        checks["best_model_gives_the_recorded_accuracy"] = (
            abs(accuracy - recorded["test_accuracy"]) <= 1 / len(test.labels) + 1e-9
        )
    return checks


def kill_and_check(data_path, workdir, kills, epochs, delays, seed):
    """One run killed `kills` times, then checked; the record of it."""
    output_dir = os.path.join(workdir, "runs")
    run_dir = os.path.join(output_dir, "killed")
    start = time.perf_counter()
    events, exit_code, errors = run_with_kills(
        train_command(data_path, output_dir, epochs),
        run_dir,
        kills,
        delays,
        seed,
        os.path.join(workdir, "stderr.log"),
    )
    checks = {"finished": exit_code == 0, **check_run(output_dir, run_dir, epochs)}
    landed = {}
    for event in events:
        landed[event["landed"]] = landed.get(event["landed"], 0) + 1
    return {
        "kills": len(events),
        "signals": {name: sum(e["signal"] == name for e in events) for name in SIGNALS},
        "landed": landed,
        "resumes": len(events),
        "epochs": epochs,
        "history_rows_checked": len(history_epochs(run_dir)),
        "checks": checks,
        "failures": sum(not passed for passed in checks.values()),
        "events": events,
        "error_tail": errors,
        "seconds": round(time.perf_counter() - start, 1),
    }


def parse_command_line(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 archive or folder to take the subset from")
    parser.add_argument("--per-class", type=int, default=200, help="training and test images per class")
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--delays", type=float, nargs=2, default=(4.0, 25.0), help="seconds before a kill")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def kill_in_rounds(data_path, workdir, kills, epochs, delays, seed):
    """Rounds of `kill_and_check`, each a fresh run, until `kills` kills have landed."""
    rounds = []
    while sum(done["kills"] for done in rounds) < kills:
        folder = os.path.join(workdir, f"round{len(rounds)}")
        os.makedirs(folder)
        remaining = kills - sum(done["kills"] for done in rounds)
        rounds.append(kill_and_check(data_path, folder, remaining, epochs, delays, seed + len(rounds)))
    landed = {}
    for done in rounds:
        for where, count in done["landed"].items():
            landed[where] = landed.get(where, 0) + count
    return {
        "kills": sum(done["kills"] for done in rounds),
        "signals": {name: sum(done["signals"][name] for done in rounds) for name in SIGNALS},
        "landed": landed,
        "runs": len(rounds),
        "resumes": sum(done["resumes"] for done in rounds),
        "history_rows_checked": sum(done["history_rows_checked"] for done in rounds),
        "files_checked": ["history.csv", "best.keras", "metrics.json", "run folder"],
        "failures": sum(done["failures"] for done in rounds),
        "rounds": rounds,
    }


def main(argv=None):
    options = parse_command_line(argv)
    with tempfile.TemporaryDirectory() as workdir:
        subset = os.path.join(workdir, "subset.tar.gz")
        data_path = write_subset_archive(options.data, options.per_class, subset)
        record = kill_in_rounds(
            data_path, workdir, options.kills, options.epochs, options.delays, options.seed
        )
    record.update(epochs=options.epochs, per_class=options.per_class, delays=list(options.delays))
    record["machine"] = machine_description()
    record = write_record(options.out, record)
    print(
        f"{record['kills']} kills in {record['runs']} runs {record['landed']}, failures {record['failures']}"
    )
    return record


if __name__ == "__main__":
    main()
