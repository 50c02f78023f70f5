"""Peak memory of train.py runs: the whole process's peak and the peak of each phase.

    python -m benchmarks.speed.peak_memory --data PATH --out benchmarks/results/peak_memory/peak_memory.json

Each case runs `python train.py --set data_path=PATH ...` as a subprocess on the given data (the
full CIFAR-10 for the record) in a fresh temporary output folder, analysis included. The process's
peak resident memory comes from the kernel (`ru_maxrss` of `os.wait4`, exact); the resident
memory is also sampled every `--interval` seconds and each sample is attributed to the phase the
run folder shows at that moment (start-up, a training phase, testing and analysis), which gives
each phase's peak (sampled, so a spike shorter than the interval may be missed).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from benchmarks.common import ROOT, machine_description, write_record  # noqa: E402
from utils.runs.folders import METRICS_FILE, read_json  # noqa: E402
from utils.training.loop import STATE_FILE  # noqa: E402

MIB = 1024 * 1024
LIMIT_GIB = 6.0
RUN_NAME = "memory"

# name -> (model, overrides): the from-scratch models with their recipes, and the pretrained
# phases (frozen head, then fine-tuning) of VGG16 (random weights: the same memory as ImageNet's)
# and EfficientNet-Lite0 with its ImageNet weights.
CASES = {
    "lenet": ("lenet", {}),
    "custom_cnn": ("custom_cnn", {}),
    "fast_cnn": ("fast_cnn", {"preset": "fast"}),
    "vgg16": ("vgg16", {"weights": None, "fine_tune_epochs": 1}),
    "efficientnet_lite0_64px": (
        "efficientnet_lite0",
        {"image_size": 64, "fine_tune_layers": "all", "fine_tune_epochs": 1},
    ),
    "efficientnet_lite0_224px_frozen": (
        "efficientnet_lite0",
        {"image_size": 224, "fine_tune_epochs": 0, "augment_flip": False, "augment_translate": 0},
    ),
}


def train_command(data_path, output_dir, model, overrides, epochs):
    settings = {
        "data_path": data_path,
        "output_dir": output_dir,
        "run_name": RUN_NAME,
        "epochs": epochs,
        "verbose": 0,
        **overrides,
        "models": model,
    }
    sets = [item for key, value in settings.items() for item in ("--set", f"{key}={_text(value)}")]
    return [sys.executable, os.path.join(ROOT, "train.py"), *sets]


def _text(value):
    """An override's value as train.py's --set reads it (JSON, or a plain string)."""
    return value if isinstance(value, str) else json.dumps(value)


def phase_now(run_dir, model):
    """The phase a run is in, from its folder: start-up, the unfinished training phase, or testing
    and analysis once every planned phase is done."""
    if os.path.isfile(os.path.join(run_dir, METRICS_FILE)):
        return "finished"
    phases = read_json(os.path.join(run_dir, model, STATE_FILE), default={"phases": {}})["phases"]
    if not phases:
        return "start-up"
    unfinished = [name for name, record in phases.items() if not record.get("done")]
    return unfinished[-1] if unfinished else "testing and analysis"


def resident_bytes(pid):
    """The process's resident set size now (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PhaseSampler(threading.Thread):
    """Samples a process's resident memory and keeps each phase's maximum."""

    def __init__(self, pid, run_dir, model, interval):
        super().__init__(daemon=True)
        self.pid, self.run_dir, self.model, self.interval = pid, run_dir, model, interval
        self.peaks, self.stopped = {}, threading.Event()

    def run(self):
        while not self.stopped.wait(self.interval):
            phase = phase_now(self.run_dir, self.model)
            self.peaks[phase] = max(self.peaks.get(phase, 0), resident_bytes(self.pid))


def measure(command, run_dir, model, interval):
    """Run `command`; its exit code, seconds, exact peak and sampled peak per phase (bytes)."""
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = PhaseSampler(process.pid, run_dir, model, interval)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    sampler.stopped.set()
    sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace").strip().splitlines()
    process.stderr.close()
    return {
        "exit_code": process.returncode,
        "error": error[-1] if process.returncode and error else None,
        "seconds": round(time.perf_counter() - start, 1),
        "peak_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
        "phase_peak_bytes": sampler.peaks,
    }


def case_record(measured, model, overrides, epochs):
    phases = {phase: round(value / MIB) for phase, value in measured["phase_peak_bytes"].items() if value}
    peak_gib = measured["peak_bytes"] / 1024**3
    return {
        "model": model,
        "overrides": overrides,
        "epochs": epochs,
        "exit_code": measured["exit_code"],
        "error": measured["error"],
        "seconds": measured["seconds"],
        "peak_mib": round(measured["peak_bytes"] / MIB),
        "phase_peak_mib_sampled": phases,
        "within_limit": measured["exit_code"] == 0 and peak_gib <= LIMIT_GIB,
    }


def parse_command_line(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 archive or folder")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each training phase but fine-tuning")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between memory samples")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra override")
    parser.add_argument("--append", action="store_true", help="add the cases to the record at --out")
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_command_line(argv)
    extra = dict(item.split("=", 1) for item in options.set)
    record = {"limit_gib": LIMIT_GIB, "data": os.path.basename(options.data), "cases": {}}
    if options.append:
        record["cases"] = read_json(options.out, default=record)["cases"]
    for name in options.cases:
        model, overrides = CASES[name]
        overrides = {**overrides, **extra}
        with tempfile.TemporaryDirectory() as output_dir:
            command = train_command(options.data, output_dir, model, overrides, options.epochs)
            measured = measure(command, os.path.join(output_dir, RUN_NAME), model, options.interval)
        record["cases"][name] = case_record(measured, model, overrides, options.epochs)
        print(f"{name}: peak {record['cases'][name]['peak_mib']} MiB, {record['cases'][name]}", flush=True)
        record = write_record(options.out, record)
    record["all_within_limit"] = all(case["within_limit"] for case in record["cases"].values())
    record["machine"] = machine_description()
    record = write_record(options.out, record)
    return record


if __name__ == "__main__":
    main()
