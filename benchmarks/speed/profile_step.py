"""Where a training step's time goes: TensorFlow's profiler over a few steps, summed per op type.

    python -m benchmarks.speed.profile_step --model fast_cnn --preset fast --data PATH \\
        --out benchmarks/results/profile_step/profile_fast_cnn.json

The steps run as training runs (`model.fit` on the real input pipeline with the training
callbacks), after a warm-up that traces the step. The record lists every op type with its
total time and share, the ops of the input pipeline apart, and the wall time per step; a
markdown table of the top ops is written beside it (`.md`). On several cores, ops overlap,
so shares are of the summed op time, not of the wall time.
"""

import argparse
import collections
import glob
import os
import tempfile
import time

from benchmarks.common import machine_description, write_record  # noqa: E402
from benchmarks.speed.throughput import (  # noqa: E402
    add_step_benchmark_arguments,
    prepared_model,
    step_benchmark_args,
)
from utils.steps import load_data, make_datasets, run_callbacks  # noqa: E402

# Op events are named "<scope path>:<op type>"; these types only wrap the ops they call.
WRAPPERS = {"StatefulPartitionedCall", "PartitionedCall", "While", "If", "StatelessIf", "StatelessWhile"}
PIPELINE_THREADS = "tf_data"


def op_times(space):
    """{(op type, "pipeline" or "step"): [seconds, count]} over every op event of an XSpace."""
    totals = collections.defaultdict(lambda: [0.0, 0])
    for plane in space.planes:
        for line in plane.lines:
            where = "pipeline" if line.name.startswith(PIPELINE_THREADS) else "step"
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                path, _, op_type = name.rpartition(":")
                if not path or path.endswith(":") or not op_type.isidentifier() or op_type in WRAPPERS:
                    continue  # not an op event ("Iterator::Root", "ExecutorState::Process", ...)
                total = totals[(op_type, where)]
                total[0] += event.duration_ps * 1e-12
                total[1] += 1
    return totals


def read_profile(folder):
    """The XSpace the profiler wrote under `folder`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    (path,) = glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)
    space = xplane_pb2.XSpace()
    with open(path, "rb") as handle:
        space.ParseFromString(handle.read())
    return space


def profile(model, datasets, args, steps):
    """(op times, wall seconds per step) of `steps` training steps after a warm-up of as many."""
    import tensorflow as tf  # after the project's imports, which set TensorFlow's flags first

    with tempfile.TemporaryDirectory() as folder:
        callbacks = run_callbacks(args, folder, "profile")

        def fit():
            model.fit(
                datasets.train.repeat(), steps_per_epoch=steps, epochs=1, verbose=0, callbacks=callbacks
            )

        fit()
        tf.profiler.experimental.start(os.path.join(folder, "trace"))
        start = time.perf_counter()
        fit()
        seconds = time.perf_counter() - start
        tf.profiler.experimental.stop()
        return op_times(read_profile(os.path.join(folder, "trace"))), seconds / steps


def table_rows(totals, steps):
    """Rows sorted by time: op type, where it runs, ms per step, share of all op time, calls per step."""
    overall = sum(seconds for seconds, _ in totals.values())
    rows = [
        {
            "op": op_type,
            "where": where,
            "ms_per_step": round(1000 * seconds / steps, 2),
            "share": round(seconds / overall, 4),
            "calls_per_step": round(count / steps, 1),
        }
        for (op_type, where), (seconds, count) in totals.items()
    ]
    return sorted(rows, key=lambda row: -row["ms_per_step"])


def markdown(record, top):
    """The top `top` rows as a markdown table, with what was profiled."""
    lines = [
        f"Profile of `{record['model']}` ({record['preset'] or 'defaults'}), batch {record['batch_size']}, "
        f"{record['precision']}, {record['steps']} steps: {record['ms_per_step_wall']:.0f} ms per step "
        f"(wall), {record['machine']['cpu']} ({', '.join(record['machine']['cpu_features'])}), "
        f"{record['machine']['cores']} cores, oneDNN {'on' if record['machine']['onednn'] else 'off'}.",
        "",
        "| op | where | ms per step | share of op time | calls per step |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for row in record["ops"][:top]:
        lines.append(
            f"| {row['op']} | {row['where']} | {row['ms_per_step']:.1f} | {100 * row['share']:.1f}% | "
            f"{row['calls_per_step']:g} |"
        )
    return "\n".join(lines) + "\n"


def parse_command_line(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_step_benchmark_arguments(parser)
    parser.add_argument("--steps", type=int, default=5, help="profiled training steps")
    parser.add_argument("--top", type=int, default=15, help="rows of the markdown table")
    parser.add_argument("--out", required=True, help="JSON record; the table goes beside it as .md")
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_command_line(argv)
    args = step_benchmark_args(options)
    datasets = make_datasets(load_data(args), args)
    model = prepared_model(args, datasets)
    totals, seconds_per_step = profile(model, datasets, args, options.steps)
    record = {
        "model": options.model,
        "preset": options.preset,
        "overrides": options.set,
        "batch_size": args["batch_size"],
        "precision": model.dtype_policy.name,
        "steps": options.steps,
        "ms_per_step_wall": round(1000 * seconds_per_step, 1),
        "ops": table_rows(totals, options.steps),
        "machine": machine_description(),
    }
    record = write_record(options.out, record)
    table = markdown(record, options.top)
    with open(os.path.splitext(options.out)[0] + ".md", "w", encoding="utf-8") as handle:
        handle.write(table)
    print(table)
    return record


if __name__ == "__main__":
    main()
