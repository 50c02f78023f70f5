"""Export parity record: a trained run's model exported in every format and checked on the test set.

    python -m benchmarks.robustness.export_parity --model runs/NAME/fast_cnn --data PATH \\
        --out benchmarks/results/export_parity/export_fast_cnn_muon.json

The record holds utils.export's parity per format (top-1 agreement with the .keras model, accuracy,
largest probability difference, size, single-image and 256-image latency on this CPU, the ops int8
keeps in float), the run's args, and the command, commit and machine that made it. Latencies are of
this machine with nothing else running; compare them only within one record.
"""

import argparse
import tempfile

import utils  # noqa: E402, F401  (first: it sets TensorFlow's flags before TensorFlow loads)

# isort: split

from benchmarks.common import command_line, write_record  # noqa: E402
from utils.config.resolve import resolve_args  # noqa: E402
from utils.export import FORMATS, export_model  # noqa: E402
from utils.runs.folders import model_run_args  # noqa: E402
from utils.steps import load_data  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a run's model folder (RUN/MODEL)")
    parser.add_argument("--data", required=True, help="cifar-10-python.tar.gz or its folder")
    parser.add_argument("--out", required=True, help="the JSON record to write")
    options = parser.parse_args(argv)
    data = load_data(resolve_args({"data_path": options.data, "val_fraction": 0}))
    with tempfile.TemporaryDirectory() as folder:
        exported = export_model(options.model, FORMATS, folder, data)
    run_args = model_run_args(options.model)
    command = command_line(__spec__.name, argv)
    write_record(options.out, {"run_args": run_args, **exported}, command)
    print(f"Record: {options.out}")


if __name__ == "__main__":
    main()
