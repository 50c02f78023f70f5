"""What every benchmark script shares: the machine description (with a short fixed speed probe),
record writing (command, commit and machine in every record), timing helpers and free ports.

Nothing here imports TensorFlow at module level, so the PyTorch-side scripts share it too.
Scripts run as modules from the repository root: `python -m benchmarks.speed.throughput ...`.
"""

import os
import platform
import shlex
import socket
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
THRESHOLDS = ("0.80", "0.90", "0.93", "0.94")
CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
# What makes two machines' training times comparable.
MACHINE_KIND = ("cpu", "cpu_features", "cores", "gpus", "onednn")
PROBE_SIDE = 512  # float32 matrices of the speed probe
PROBE_REPEATS = 40


def speed_probe():
    """GFLOP/s of a fixed float32 matrix product on this machine now (about a tenth of a second):
    two records of one machine kind from a fast and a slow day differ here too."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, PROBE_SIDE, PROBE_SIDE), dtype=np.float32)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(PROBE_REPEATS):
        a @ b
    seconds = time.perf_counter() - start
    return round(2 * PROBE_SIDE**3 * PROBE_REPEATS / seconds / 1e9, 1)


def _cpu():
    """(processor name, its vector units among CPU_FEATURES)."""
    cpu, flags = platform.processor(), set()
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        cpu = names[0] if names else cpu
        flags = {flag for line in lines if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    return cpu, sorted(flags & set(CPU_FEATURES))


def machine_description():
    """Processor (with its vector units: one name can hide processors years apart), core count,
    the speed probe, and the TensorFlow side's versions when TensorFlow is installed."""
    cpu, features = _cpu()
    description = {
        "cpu": cpu,
        "cpu_features": features,
        "cores": os.cpu_count(),
        "speed_probe_gflops": speed_probe(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        import keras
        import tensorflow as tf
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # the PyTorch reference's environment
        return description
    return {
        **description,
        "gpus": [gpu.name for gpu in tf.config.list_physical_devices("GPU")],
        "tensorflow": tf.__version__,
        "onednn": _pywrap_util_port.IsMklEnabled(),  # TensorFlow's oneDNN kernels (utils/__init__.py)
        "keras": keras.__version__,
    }


def refuse_other_machine(recorded, path, advice):
    """Stops (SystemExit) when `recorded`, the machine of the record at `path`, is of another kind
    than this one: times from two kinds of machine in one record would compare nothing."""
    here = machine_description()
    differs = [key for key in MACHINE_KIND if recorded.get(key) != here.get(key)]
    if differs:
        there = ", ".join(f"{key}: {recorded.get(key)!r}" for key in differs)
        ours = ", ".join(f"{key}: {here.get(key)!r}" for key in differs)
        raise SystemExit(f"{path} was measured on another machine ({there}; here: {ours}); {advice}")


def git(*arguments):
    """What `git arguments` prints in the repository, stripped."""
    command = ["git", "-C", ROOT, *arguments]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def current_commit():
    """The checked-out commit, marked "+changes" when tracked files differ from it."""
    commit = git("rev-parse", "--short", "HEAD")
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def command_line(module=None, argv=None):
    """The command that is running, as one could type it again from the repository root: `python
    -m module argv` (default: the running program and its arguments)."""
    if module is None:
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None else None
    program = ["python", "-m", module] if module else ["python", sys.argv[0]]
    return shlex.join([*program, *(sys.argv[1:] if argv is None else argv)])


def write_record(path, record, command=None):
    """Write `record` to `path` (atomically) headed by the command (default: `command_line()`),
    commit and machine that made it, and return what was written; a record that describes its
    machine keeps that description."""
    from utils.runs.folders import write_json

    machine = record.get("machine") or machine_description()  # the speed probe runs once
    headed = {"command": command or command_line(), "commit": current_commit(), "machine": machine, **record}
    write_json(path, headed)
    return headed


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


def free_ports(count):
    """`count` TCP ports free on this host now (for the workers of a local multi-process run)."""
    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports
