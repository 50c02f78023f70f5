"""Export a trained model: `python export.py runs/NAME/fast_cnn --formats saved_model,tflite,onnx`.

Writes the run's best model (RUN/MODEL, or a .keras file) in each format into --out (default
RUN/MODEL/export): saved_model (TF SavedModel with a serving signature), tflite (float32),
tflite_float16, tflite_int8 (calibrated on 200 training images; full-integer where TFLite has int8
kernels, the ops left in float are listed), onnx. Every export takes raw 0-255 RGB 32x32 images and
gives class probabilities, calibrated by the run's temperature when it fitted one. Each is then
reloaded by its own runtime (TensorFlow, the TFLite interpreter, onnxruntime) and checked against
the .keras model computed in float32 on the test set: top-1 agreement, accuracy, largest probability
difference, size and latency on this CPU, written as export.json and export.md in --out (a
mixed-precision model's own answers are compared beside it). Float exports must agree on
99.9% of the test images, int8 must stay within 0.5 points of accuracy. `predict.py --model` takes
any of the exports.

Exit status: 0 when every export passes its check, 1 when one misses it, 2 for bad input (no model,
an unknown format, an output folder that cannot be written, a format a model cannot take).
"""

import argparse
import os
import sys

from utils.runtime.versions import exit_if_unsupported  # noqa: E402

exit_if_unsupported()  # an old Python, TensorFlow or Keras: one line, before any work

from utils.errors import ProjectError  # noqa: E402

FORMATS = (
    "saved_model",
    "tflite",
    "tflite_float16",
    "tflite_int8",
    "onnx",
)  # utils.export's, without TensorFlow


def parse_command_line(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", metavar="RUN/MODEL", help="a run's model folder, or a .keras file")
    parser.add_argument(
        "--formats",
        default=",".join(FORMATS),
        help=f"comma-separated, from {', '.join(FORMATS)} (default: all)",
    )
    parser.add_argument("--out", help="the folder to write into (default: RUN/MODEL/export)")
    parser.add_argument(
        "--data",
        help="cifar-10-python.tar.gz or its folder, for the test set and the int8 calibration "
        "(default: the run's data_path, else $CIFAR10_DATA, else the download)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_command_line(argv)
    formats = [name.strip() for name in options.formats.split(",") if name.strip()]
    try:
        from utils.config.resolve import resolve_args
        from utils.export import check_formats, ensure_writable, export_model, export_table, model_file
        from utils.runs.folders import model_run_args
        from utils.steps import load_data

        check_formats(formats)
        path = model_file(options.model)
        folder = options.out or os.path.join(os.path.dirname(path), "export")
        ensure_writable(folder)
        data_path = options.data or (model_run_args(os.path.dirname(path)) or {}).get("data_path")
        data = load_data(resolve_args({"data_path": data_path, "val_fraction": 0}))
        record = export_model(path, formats, folder, data)
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(export_table(record))
    return 0 if all(row["passes"] for row in record["formats"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
