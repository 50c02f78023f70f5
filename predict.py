"""Classify your own images: `python predict.py photo.jpg folder/ --model RUN/MODEL/best.keras`.

--model takes a run's .keras model or one of its exports (export.py: a SavedModel folder, a .tflite or
an .onnx file), each run by its own runtime, with the same answers.

PNG and JPEG files of any size are resized to 32x32 with anti-aliasing; the top-3 classes are
printed with their probabilities, calibrated by the temperature fitted for the model when its
run folder has one. A missing, unreadable or non-image file gets a one-line error naming it and
the other files are still classified (exit status 1 then; 2 when the model cannot be loaded).
"""

import argparse
import json
import sys


def parse_command_line(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "paths", nargs="+", metavar="IMAGE_OR_FOLDER", help="PNG/JPEG files or folders of them"
    )
    parser.add_argument(
        "--model",
        required=True,
        help="a saved model (runs/NAME/custom_cnn/best.keras) or its export (SavedModel, .tflite, .onnx)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    parser.add_argument("--top", type=int, default=3, help="how many classes to print per image")
    options = parser.parse_args(argv)
    if not 1 <= options.top <= 10:
        parser.error(f"--top {options.top}: expected a number of classes from 1 to 10")
    return options


def print_lines(predictions):
    for prediction in predictions:
        classes = ", ".join(f"{top['class']} {100 * top['probability']:.1f}%" for top in prediction["top"])
        print(f"{prediction['path']}: {classes}")


def main(argv=None):
    options = parse_command_line(argv)  # TensorFlow is imported after parsing: --help is instant
    from utils.runtime.versions import exit_if_unsupported

    exit_if_unsupported()  # an old Python, TensorFlow or Keras: one line, before any work
    from utils.errors import ProjectError
    from utils.prediction import classify_files, load_classifier

    try:
        classifier = load_classifier(options.model)
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    predictions, errors = classify_files(classifier, options.paths, options.top)
    for error in errors:
        print(f"error: {error['error']}", file=sys.stderr)
    if options.json:
        document = {"model": options.model, "temperature": classifier.temperature}
        print(json.dumps({**document, "predictions": predictions, "errors": errors}, indent=1))
    else:
        print_lines(predictions)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
