"""Take a trained model elsewhere: TF SavedModel, TFLite (float32, float16, int8) and ONNX, each
checked against the `.keras` model on the test set.

Every export takes what the `.keras` model takes, raw 0-255 RGB images of 32x32 as float32, and
gives class probabilities, calibrated by the run's temperature when it fitted one (softmax of
logits / T, folded into the exported graph). A model trained under a mixed policy is exported as a
float32 copy: TFLite's int8 calibration and several runtimes want float32 graphs. The check compares
each export with the `.keras` model computed in float32 (the same weights, the arithmetic the export
does); a mixed-precision model's own answers (bfloat16 rounding and all) are compared beside it.
"""

import dataclasses
import json
import os
import re
import shutil
import tempfile
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

import models  # noqa: F401  (registers the custom layers a saved model needs)
from utils.analysis.summary import saved_temperature
from utils.errors import ExportError, ModelFileError
from utils.prediction import batched_predictor
from utils.runs.folders import write_json
from utils.training.loop import tested_model_file

FORMATS = ("saved_model", "tflite", "tflite_float16", "tflite_int8", "onnx")
FILE_NAMES = {
    "saved_model": "saved_model",
    "tflite": "model.tflite",
    "tflite_float16": "model_float16.tflite",
    "tflite_int8": "model_int8.tflite",
    "onnx": "model.onnx",
}
EXPORT_RECORD = "export.json"
FLOAT_AGREEMENT = 0.999  # float exports: share of test images whose top class is the .keras model's
INT8_ACCURACY_DROP = 0.005  # int8: at most 0.5 points of test accuracy below the .keras model
REPRESENTATIVE_IMAGES = 200  # training images that calibrate the int8 ranges


@keras.saving.register_keras_serializable(package="cifar10")
class Temperature(keras.layers.Layer):
    """Class probabilities p -> softmax(log(p) / T), which is softmax(logits / T) for p = softmax(logits)."""

    def __init__(self, temperature, **kwargs):
        super().__init__(**kwargs)
        self.temperature = float(temperature)

    def call(self, probabilities):
        logits = keras.ops.log(keras.ops.maximum(probabilities, 1e-30))
        return keras.ops.softmax(logits / self.temperature, axis=-1)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


def model_file(target):
    """The `.keras` file the run tested in a model folder (RUN/MODEL: best.keras, else final.keras),
    or the file itself.

    Raises:
        ModelFileError: when there is no such model.
    """
    path = (tested_model_file(target) or "") if os.path.isdir(target) else target
    if not (path.endswith(".keras") and os.path.isfile(path)):
        raise ModelFileError(
            f"{target}: no model to export; pass a run's model folder (RUN/MODEL) or its .keras file."
        )
    return path


def check_formats(formats):
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise ExportError(f"Unknown export format(s) {unknown or formats}; accepted: {', '.join(FORMATS)}.")
    return list(formats)


def _float32_config(value):
    """A model config with every layer's dtype policy set to float32."""
    if isinstance(value, dict):
        if value.get("class_name") == "DTypePolicy":
            return {**value, "config": {**value["config"], "name": "float32"}}
        return {key: _float32_config(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_float32_config(item) for item in value]
    return value


def float32_copy(model):
    """A float32 copy of `model` with the same weights (a mixed-precision model's are float32)."""
    copy = model.__class__.from_config(_float32_config(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def calibrated(model, temperature):
    """`model` followed by softmax(logits / temperature); the model itself when None."""
    if temperature is None:
        return model
    inputs = keras.Input(model.input_shape[1:], name="images")
    # float32 whatever the global policy (a notebook's is often mixed): TFLite has no bfloat16 Log.
    scaled = Temperature(temperature, dtype="float32", name="temperature")(model(inputs))
    return keras.Model(inputs, scaled, name=model.name)


def _blocking_op(error):
    """The TensorFlow op a converter's error names, when it names one."""
    found = re.search(r"'tf\.(\w+)'", str(error)) or re.search(
        r"\bop[: ]+'?(\w+)'? is not supported", str(error)
    )
    return found[1] if found else None


def _blocked(error, format_name, model_name):
    """The ExportError saying which format a model cannot take, and the op that blocks it."""
    op = _blocking_op(error)
    blocked = f"the op {op}" if op else str(error).strip().splitlines()[0][:200]
    return ExportError(f"{model_name} cannot be exported as {format_name}: {blocked}.")


def _tflite_converter(saved_model_dir, format_name, representative_images):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    if format_name == "tflite_float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif format_name == "tflite_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in representative_images)
        # Full-integer where an op has an int8 kernel; the others stay float (listed in the record).
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
    return converter


def _write_onnx(saved_model_dir, path):
    """ONNX through tf2onnx (the converter Keras's own ONNX export uses), from the SavedModel's
    serving function frozen to constants: Keras's export keeps captured constants (such as a
    Normalization layer's mean) as extra graph inputs."""
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    saved = tf.saved_model.load(saved_model_dir)  # held while freezing: its variables die with it
    frozen = convert_variables_to_constants_v2(saved.signatures["serving_default"])
    tf2onnx.convert.from_graph_def(
        frozen.graph.as_graph_def(),
        input_names=[tensor.name for tensor in frozen.inputs],
        output_names=[tensor.name for tensor in frozen.outputs],
        output_path=path,
    )


def _write_one(name, model, path, saved_model_dir, representative_images):
    try:
        if name == "onnx":
            _write_onnx(saved_model_dir, path)
            return
        converter = _tflite_converter(saved_model_dir, name, representative_images)
        with open(path, "wb") as handle:
            handle.write(converter.convert())
    except Exception as error:  # the converters raise many kinds of errors
        raise _blocked(error, name, model.name) from error


def write_exports(model, formats, folder, representative_images):
    """Write each format into `folder`; returns {format: path}."""
    os.makedirs(folder, exist_ok=True)
    paths = {name: os.path.join(folder, FILE_NAMES[name]) for name in formats}
    with tempfile.TemporaryDirectory() as scratch:
        saved_model_dir = paths.get("saved_model", os.path.join(scratch, "saved_model"))
        shutil.rmtree(saved_model_dir, ignore_errors=True)
        model.export(saved_model_dir, format="tf_saved_model", verbose=False)
        for name in formats:
            if name != "saved_model":
                _write_one(name, model, paths[name], saved_model_dir, representative_images)
    return paths


@dataclasses.dataclass
class LoadedExport:
    """An exported model loaded by its own runtime: `predict(images) -> probabilities`."""

    predict: object
    float_ops: list  # TFLite int8: the op types left computing in float


def _interpreter(path, **options):
    with warnings.catch_warnings():  # TensorFlow 2.20+ points to the separate LiteRT package
        warnings.filterwarnings("ignore", "\\s*Warning: tf.lite.Interpreter is deprecated")
        return tf.lite.Interpreter(model_path=path, **options)


def _tflite_predictor(path):
    interpreter = _interpreter(path)
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()

    def predict(images):
        interpreter.resize_tensor_input(source["index"], images.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], images.astype(np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(target["index"]).copy()

    return predict


def float_op_types(path):
    """Op types of a quantized TFLite model that read float32 tensors (quantize / dequantize aside;
    none for a float model), read without the default delegate, which would hide the ops it takes."""
    without_delegates = tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = _interpreter(path, experimental_op_resolver_type=without_delegates)
    interpreter.allocate_tensors()
    tensors = {detail["index"]: detail["dtype"] for detail in interpreter.get_tensor_details()}
    if np.int8 not in tensors.values():
        return []
    kinds = set()
    for op in interpreter._get_ops_details():  # TFLite's only per-op listing
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        if any(tensors.get(index) == np.float32 for index in op["inputs"] if index >= 0):
            kinds.add(op["op_name"])
    return sorted(kinds)


def load_export(path):
    """The exported model at `path` (a SavedModel folder, .tflite or .onnx) with its runtime."""
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb")):
        saved = tf.saved_model.load(path)  # kept by the closure: its variables die with it
        serve = lambda images: saved.serve(tf.constant(images, tf.float32)).numpy()  # noqa: E731
        return LoadedExport(serve, [])
    if path.endswith(".tflite") and os.path.isfile(path):
        predict = _tflite_predictor(path)
        predict(np.zeros((1, 32, 32, 3), np.float32))
        return LoadedExport(predict, float_op_types(path))
    if path.endswith(".onnx") and os.path.isfile(path):
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return LoadedExport(lambda images: session.run(None, {name: images.astype(np.float32)})[0], [])
    raise ModelFileError(f"{path}: not an exported model (a SavedModel folder, a .tflite or an .onnx file).")


def latency_ms(predict, images, repeats):
    """Median wall milliseconds of `predict(images)` over `repeats` calls, after one warm-up."""
    predict(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(images)
        times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times))


def size_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names
    )


def parity(references, loaded, path, images, labels, repeats=20):
    """How the export at `path` compares with the `.keras` model on the float32 test `images`:
    `references` holds its
    probabilities computed in float32 (what the export computes: the check) and, for a model
    trained under a mixed policy, as it runs in that policy."""
    probabilities = batched_predictor(loaded.predict)(images)
    top = probabilities.argmax(1)
    return {
        "agreement": float(np.mean(top == references["float32"].argmax(1))),
        "max_probability_difference": float(np.abs(probabilities - references["float32"]).max()),
        "agreement_with_trained_policy": float(np.mean(top == references["trained_policy"].argmax(1))),
        "accuracy": float(np.mean(top == labels)),
        "size_bytes": size_bytes(path),
        "latency_ms_one_image": latency_ms(loaded.predict, images[:1], repeats),
        "latency_ms_batch_256": latency_ms(loaded.predict, images[:256], max(3, repeats // 4)),
        "float_ops": loaded.float_ops,
    }


def passes(format_name, row, keras_accuracy):
    if format_name == "tflite_int8":
        return row["accuracy"] >= keras_accuracy - INT8_ACCURACY_DROP
    return row["agreement"] >= FLOAT_AGREEMENT


def ensure_writable(folder):
    """Create `folder` if needed and check that a file can be written in it.

    Raises:
        ExportError: naming the folder, when it cannot be written.
    """
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.NamedTemporaryFile(dir=folder).close()
    except OSError as error:
        raise ExportError(
            f"Cannot write the export folder {folder} ({error.strerror}); choose another with --out."
        ) from None


def export_model(target, formats, folder, data):
    """Export the model at `target` (RUN/MODEL or a .keras file) into `folder` in `formats`, check
    each against the `.keras` model on `data.test`, and write export.json and export.md there.

    Returns:
        the record: the model, its temperature, and per format its path and parity.
    """
    formats = check_formats(formats)
    path = model_file(target)
    ensure_writable(folder)
    temperature = saved_temperature(os.path.dirname(path))
    trained = keras.models.load_model(path, compile=False)
    model = calibrated(float32_copy(trained), temperature)
    images = data.test.images.astype(np.float32)
    references = {"float32": model.predict(images, batch_size=256, verbose=0)}
    # A model trained under a mixed policy runs in it when loaded: its answers, for comparison.
    policies = {layer.dtype_policy.name for layer in trained.layers} - {"float32"}
    policy = min(policies) if policies else "float32"
    references["trained_policy"] = (
        calibrated(trained, temperature).predict(images, batch_size=256, verbose=0)
        if policies
        else references["float32"]
    )
    keras_accuracy = float(np.mean(references["trained_policy"].argmax(1) == data.test.labels))
    representative = data.train.images[:REPRESENTATIVE_IMAGES].astype(np.float32)
    paths = write_exports(model, formats, folder, representative)
    record = {
        "model": path,
        "temperature": temperature,
        "trained_policy": policy,
        "keras_accuracy": keras_accuracy,
        "keras_float32_accuracy": float(np.mean(references["float32"].argmax(1) == data.test.labels)),
        "keras_float32_agreement_with_trained_policy": float(
            np.mean(references["float32"].argmax(1) == references["trained_policy"].argmax(1))
        ),
        "formats": {},
    }
    for name, exported in paths.items():
        row = parity(references, load_export(exported), exported, images, data.test.labels)
        record["formats"][name] = {"path": exported, **row, "passes": passes(name, row, keras_accuracy)}
    write_json(os.path.join(folder, EXPORT_RECORD), record)
    with open(os.path.join(folder, "export.md"), "w", encoding="utf-8") as handle:
        handle.write(export_table(record))
    return record


def export_table(record):
    """The record as a markdown table."""
    lines = [
        f"Exports of `{record['model']}` (trained {record['trained_policy']}, temperature "
        f"{record['temperature']}); .keras test accuracy {100 * record['keras_accuracy']:.2f}% as trained, "
        f"{100 * record['keras_float32_accuracy']:.2f}% in float32. Agreement: the export's top class "
        "against the .keras model computed in float32, as the export computes (the check).",
        "",
        "| format | agreement | agreement with the trained policy | accuracy | max prob. diff | size (MB) "
        "| 1 image (ms) | 256 images (ms) | passes | float ops |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for name, row in record["formats"].items():
        lines.append(
            f"| {name} | {100 * row['agreement']:.2f}% | {100 * row['agreement_with_trained_policy']:.2f}% | "
            f"{100 * row['accuracy']:.2f}% | "
            f"{row['max_probability_difference']:.2g} | {row['size_bytes'] / 1e6:.2f} | "
            f"{row['latency_ms_one_image']:.2f} | {row['latency_ms_batch_256']:.1f} | "
            f"{'yes' if row['passes'] else 'NO'} | {', '.join(row['float_ops']) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def export_temperature(path):
    """The temperature folded into the export at `path` (from the export.json beside it), or None."""
    record_path = os.path.join(os.path.dirname(os.path.normpath(path)), EXPORT_RECORD)
    if not os.path.isfile(record_path):
        return None
    with open(record_path, encoding="utf-8") as handle:
        return json.load(handle).get("temperature")
