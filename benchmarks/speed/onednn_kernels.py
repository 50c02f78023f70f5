"""Which oneDNN kernels a training step runs, with which instruction set, and how much of the step
they take: oneDNN's verbose log over a few steps, summed per primitive and implementation.

    python -m benchmarks.speed.onednn_kernels --model fast_cnn --preset fast_muon --data PATH \\
        --out benchmarks/results/profile_step/onednn_fast_cnn_muon_intel_amx.json

The steps run in a child process with ONEDNN_VERBOSE=1 (oneDNN prints one line per primitive
execution on stdout, ending in its milliseconds), after a warm-up step that is not counted. The
record lists each (primitive, implementation) with its time per step and share, and the share of
the step's wall time spent outside oneDNN's primitives (TensorFlow's own ops, the graph, the input
pipeline); a markdown table is written beside it (`.md`). oneDNN's times are per call, so on several
threads they are wall time of the primitive, not summed thread time.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import time

from benchmarks.common import machine_description, write_record

TIMED_MARK = "=== timed steps ==="
VERBOSE_PREFIX = "onednn_verbose,"


def parse_verbose(lines):
    """{(primitive, implementation): [milliseconds, calls]} of the executions in oneDNN verbose lines
    (v3 format: "onednn_verbose,[timestamp,]v1,primitive,exec,cpu,<primitive>,<implementation>,...,<ms>")."""
    totals = collections.defaultdict(lambda: [0.0, 0])
    for line in lines:
        if not line.startswith(VERBOSE_PREFIX):
            continue
        fields = line.strip().split(",")
        if "exec" not in fields:
            continue
        at = fields.index("exec")
        primitive, implementation = fields[at + 2], fields[at + 3]
        total = totals[(primitive, implementation)]
        total[0] += float(fields[-1])
        total[1] += 1
    return totals


def kernel_rows(totals, steps, wall_ms_per_step):
    """Rows sorted by time: primitive, implementation, ms per step, share of the step's wall time,
    calls per step."""
    rows = [
        {
            "primitive": primitive,
            "implementation": implementation,
            "ms_per_step": round(ms / steps, 2),
            "share_of_wall": round(ms / steps / wall_ms_per_step, 4),
            "calls_per_step": round(calls / steps, 1),
        }
        for (primitive, implementation), (ms, calls) in totals.items()
    ]
    return sorted(rows, key=lambda row: -row["ms_per_step"])


def child(options):
    """Run the warm-up and the timed steps; print the timed steps' wall time as JSON at the end."""
    from benchmarks.speed.throughput import prepared_model, step_benchmark_args
    from utils.steps import load_data, make_datasets

    args = step_benchmark_args(options)
    datasets = make_datasets(load_data(args, with_test=False), args)
    model = prepared_model(args, datasets)
    train = datasets.train.repeat()
    model.fit(train, steps_per_epoch=1, epochs=1, verbose=0)
    print(TIMED_MARK, flush=True)
    start = time.perf_counter()
    model.fit(train, steps_per_epoch=options.steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    sys.stdout.flush()
    timing = {"wall_seconds": seconds, "precision": model.dtype_policy.name, "batch": args["batch_size"]}
    print(json.dumps(timing))


def run_child(argv):
    """The child's stdout lines after the timed mark, and its closing JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.speed.onednn_kernels", *argv, "--child"],
        capture_output=True,
        text=True,
        env={**os.environ, "ONEDNN_VERBOSE": "1"},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the profiled child failed:\n{done.stderr[-3000:]}")
    lines = done.stdout.splitlines()
    timed = lines[lines.index(TIMED_MARK) + 1 :]
    return timed[:-1], json.loads(timed[-1])


def markdown(record, top=15):
    lines = [
        f"oneDNN kernels of `{record['model']}` ({record['preset'] or 'defaults'}), "
        f"batch {record['batch_size']}, {record['precision']}, {record['steps']} steps: "
        f"{record['ms_per_step_wall']:.0f} ms per step (wall), "
        f"{100 * record['outside_onednn_share']:.1f}% of it outside oneDNN primitives; "
        f"{record['machine']['cpu']} ({', '.join(record['machine']['cpu_features'])}), "
        f"{record['machine']['cores']} cores.",
        "",
        "| primitive | implementation | ms per step | share of wall | calls per step |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for row in record["kernels"][:top]:
        lines.append(
            f"| {row['primitive']} | {row['implementation']} | {row['ms_per_step']:.1f} | "
            f"{100 * row['share_of_wall']:.1f}% | {row['calls_per_step']:g} |"
        )
    return "\n".join(lines) + "\n"


def parse_command_line(argv):
    from benchmarks.speed.throughput import add_step_benchmark_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_step_benchmark_arguments(parser)
    parser.add_argument("--steps", type=int, default=2, help="timed training steps")
    parser.add_argument("--out", help="JSON record; the table goes beside it as .md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    options = parse_command_line(argv)
    if options.child:
        return child(options)
    lines, timing = run_child(argv)
    wall_ms = 1000 * timing["wall_seconds"] / options.steps
    rows = kernel_rows(parse_verbose(lines), options.steps, wall_ms)
    record = {
        "model": options.model,
        "preset": options.preset,
        "set": options.set,
        "precision": timing["precision"],
        "batch_size": timing["batch"],
        "steps": options.steps,
        "ms_per_step_wall": round(wall_ms, 1),
        "outside_onednn_share": round(1 - sum(row["share_of_wall"] for row in rows), 4),
        "kernels": rows,
        "machine": machine_description(),
    }
    record = write_record(options.out, record)
    with open(os.path.splitext(options.out)[0] + ".md", "w", encoding="utf-8") as handle:
        handle.write(markdown(record))
    print(markdown(record))
    return record


if __name__ == "__main__":
    main()
