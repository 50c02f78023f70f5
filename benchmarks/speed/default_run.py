"""The default run end to end: `python train.py` with nothing but the data set, timed as a user
waits for it (process start to exit: start-up, data loading, every model's training, testing,
analysis), against the budget the README promises.

    python -m benchmarks.speed.default_run --data PATH --out benchmarks/results/default_run/default_run.json

The run writes into a fresh temporary output folder, its feature cache included (a first run
computes the frozen backbone's features, as a new user's does). Offline (as here), VGG16's ImageNet weights
cannot be downloaded and EfficientNet-Lite0 takes its place, as it does for a user offline.
`--set KEY=VALUE` adds overrides (for the tests' tiny data: `--set small_run=true`).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.common import ROOT, command_line, write_record
from utils.runs.folders import METRICS_FILE, read_json

BUDGET_MINUTES = 20.0
RUN_NAME = "default"


def run_default(data_path, sets, output_dir):
    """Run train.py with the defaults (plus `sets`, KEY=VALUE strings) into `output_dir`; returns
    (seconds from start to exit, exit code, the last lines it printed)."""
    settings = [
        f"data_path={data_path}",
        f"output_dir={output_dir}",
        f"run_name={RUN_NAME}",
        f"feature_cache_dir={os.path.join(output_dir, 'features')}",
        *sets,
    ]
    command = [sys.executable, os.path.join(ROOT, "train.py")]
    for setting in settings:
        command += ["--set", setting]
    start = time.perf_counter()
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    output = (finished.stdout + finished.stderr).splitlines()
    return seconds, finished.returncode, output[-40:]


def default_run_record(data_path, sets):
    """The record of one default run: its wall-clock time against the budget, and each model's
    test accuracy and training time from the run's metrics.json."""
    with tempfile.TemporaryDirectory() as output_dir:
        seconds, exit_code, tail = run_default(data_path, sets, output_dir)
        run_dir = os.path.join(output_dir, RUN_NAME)
        metrics = read_json(os.path.join(run_dir, METRICS_FILE), default={})
        run_args = read_json(os.path.join(run_dir, "args.json"), default={})
    return {
        "budget_minutes": BUDGET_MINUTES,
        "minutes": round(seconds / 60, 2),
        "within_budget": exit_code == 0 and seconds <= 60 * BUDGET_MINUTES,
        "exit_code": exit_code,
        "set": list(sets),
        "models": run_args.get("models"),
        "model_args": run_args.get("model_args"),
        "results": {
            name: {
                key: row.get(key)
                for key in ("test_accuracy", "test_accuracy_tta", "train_seconds", "eval_seconds", "epochs")
            }
            for name, row in metrics.items()
        },
        "output_tail": tail if exit_code else tail[-12:],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 archive or extracted folder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an extra override")
    parser.add_argument("--out", required=True, help="record to write (JSON)")
    options = parser.parse_args(argv)
    record = default_run_record(options.data, options.set)
    write_record(options.out, record, command_line("benchmarks.speed.default_run", argv))
    print(json.dumps({key: record[key] for key in ("minutes", "within_budget", "results")}, indent=1))
    return 0 if record["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
