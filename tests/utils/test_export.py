"""Exports of tiny trained models of every family: each format written, reloaded by its own
runtime in a fresh process and agreeing with the .keras model; bad input in one line; predict.py
answers the same from an export."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import export as export_script
import models
from tests import ROOT
from utils.analysis.calibration import apply_temperature
from utils.config.resolve import resolve_args
from utils.export import FORMATS, export_model
from utils.prediction import classify_files, load_classifier
from utils.steps import load_data

pytestmark = pytest.mark.slow  # exports every family to every format

FAMILIES = {
    "fast_cnn": "mixed_bfloat16",
    "custom_cnn": "float32",
    "lenet": "float32",
    "efficientnet_lite0": "float32",
    "vgg16": "float32",
}
TEMPERATURE = 1.5

RELOAD = """
import json, sys
import numpy as np
from utils.export import load_export
images = np.load(sys.argv[1])
out = {path: load_export(path).predict(images).tolist() for path in sys.argv[2:]}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def data(tiny_archive):
    return load_data(resolve_args({"data_path": tiny_archive, "val_fraction": 0}))


def trained_model_folder(name, policy, data, folder):
    """RUN/MODEL with a best.keras trained for an epoch, and a fitted temperature."""
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = models.build_model(name, **({"weights": None} if name in ("efficientnet_lite0", "vgg16") else {}))
    images = data.train.images.astype("float32")
    if name == "fast_cnn":
        models.adapt_to_images(model, images)
    model.compile("adam", "categorical_crossentropy")
    model.fit(images, keras.utils.to_categorical(data.train.labels, 10), epochs=1, verbose=0)
    os.makedirs(folder)
    model.save(os.path.join(folder, "best.keras"))
    with open(os.path.join(folder, "calibration.json"), "w", encoding="utf-8") as handle:
        json.dump({"temperature": TEMPERATURE}, handle)
    return model  # the training policy stays global, as in a notebook (the fixture resets it)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_exports_and_each_runtime_agrees_in_a_fresh_process(name, data, tmp_path):
    folder = str(tmp_path / "run" / name)
    model = trained_model_folder(name, FAMILIES[name], data, folder)
    expected = apply_temperature(model.predict(data.test.images.astype("float32"), verbose=0), TEMPERATURE)
    record = export_model(folder, FORMATS, os.path.join(folder, "export"), data)

    assert list(record["formats"]) == list(FORMATS) and record["temperature"] == TEMPERATURE
    assert record["trained_policy"] == FAMILIES[name]
    if FAMILIES[name] == "float32":  # one model, one arithmetic: both references are the same
        assert record["keras_float32_agreement_with_trained_policy"] == 1.0
    assert os.path.isfile(os.path.join(folder, "export", "export.json"))
    assert "| tflite_int8 |" in open(os.path.join(folder, "export", "export.md"), encoding="utf-8").read()
    paths = [row["path"] for row in record["formats"].values()]
    np.save(tmp_path / "images.npy", data.test.images.astype("float32"))
    done = subprocess.run(
        [sys.executable, "-c", RELOAD, str(tmp_path / "images.npy"), *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    reloaded = {path: np.asarray(values) for path, values in json.loads(done.stdout.splitlines()[-1]).items()}
    # A float32 export of a bfloat16-trained model differs from its bfloat16 inference in the 3rd digit.
    exact = 1e-5 if FAMILIES[name] == "float32" else 1e-2
    tolerance = {"saved_model": exact, "tflite": exact, "onnx": exact, "tflite_float16": 2e-2}
    for format_name, row in record["formats"].items():
        probabilities = reloaded[row["path"]]
        assert probabilities.shape == expected.shape
        quantized = format_name == "tflite_int8"  # its softmax comes out in steps of 1/256
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=2e-2 if quantized else 1e-3)
        if format_name in tolerance:  # float exports: the .keras model's calibrated probabilities
            assert np.abs(probabilities - expected).max() < tolerance[format_name], format_name
            assert row["agreement"] >= 0.999 and row["passes"], format_name
        assert row["size_bytes"] > 0 and row["latency_ms_one_image"] > 0
    assert record["formats"]["tflite_int8"]["size_bytes"] < record["formats"]["tflite"]["size_bytes"] / 2
    assert record["formats"]["tflite"]["float_ops"] == []  # listed for quantized models only
    assert "DELEGATE" not in record["formats"]["tflite_int8"]["float_ops"]


def test_predict_answers_the_same_from_an_export(data, tmp_path):
    folder = str(tmp_path / "run" / "lenet")
    trained_model_folder("lenet", "float32", data, folder)
    export_model(folder, ["tflite", "onnx"], os.path.join(folder, "export"), data)
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for index in range(3):
        Image.fromarray(data.test.images[index]).save(images / f"{index}.png")
    original = load_classifier(os.path.join(folder, "best.keras"))
    for exported in ("model.tflite", "model.onnx"):
        classifier = load_classifier(os.path.join(folder, "export", exported))
        assert classifier.temperature == original.temperature == TEMPERATURE
        answers, errors = classify_files(classifier, [str(images)])
        reference, _ = classify_files(original, [str(images)])
        assert errors == [] and [a["top"][0]["class"] for a in answers] == [
            r["top"][0]["class"] for r in reference
        ]
        for answer, expected in zip(answers, reference):
            for got, want in zip(answer["top"], expected["top"]):
                assert got["probability"] == pytest.approx(want["probability"], abs=1e-5)


def test_export_command_refuses_bad_input_in_one_line(tmp_path, capsys, tiny_archive):
    empty = tmp_path / "run" / "lenet"
    empty.mkdir(parents=True)
    assert export_script.main([str(empty)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {empty}: no model to export; pass a run's model folder (RUN/MODEL) or its .keras file."
    ]
    (empty / "best.keras").write_text("not read before the checks")
    assert export_script.main([str(empty), "--formats", "tflite,coreml"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "Unknown export format(s) ['coreml']" in line and "tflite_int8" in line
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert export_script.main([str(empty), "--out", str(blocker / "sub"), "--data", tiny_archive]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: Cannot write the export folder {blocker / 'sub'}")


def test_export_command_lists_the_library_formats():
    assert export_script.FORMATS == FORMATS


def test_a_format_a_model_cannot_take_is_named_with_its_op(monkeypatch, data, tmp_path):
    """A converter's refusal becomes one line naming the model, the format and the op."""
    import utils.export

    folder = str(tmp_path / "run" / "lenet")
    trained_model_folder("lenet", "float32", data, folder)

    def refuse(saved_model_dir, format_name, representative_images):
        class Refusing:
            def convert(self):
                raise RuntimeError(
                    "loc(...): 'tf.ImageProjectiveTransformV3' op is neither a custom op nor a flex op"
                )

        return Refusing()

    monkeypatch.setattr(utils.export, "_tflite_converter", refuse)
    with pytest.raises(utils.export.ExportError) as raised:
        export_model(folder, ["tflite_int8"], str(tmp_path / "out"), data)
    assert str(raised.value) == "lenet cannot be exported as tflite_int8: the op ImageProjectiveTransformV3."


def test_export_parity_record_names_its_command_commit_and_machine(data, tiny_archive, tmp_path):
    from benchmarks.robustness import export_parity as script

    folder = str(tmp_path / "run" / "lenet")
    trained_model_folder("lenet", "float32", data, folder)
    out = tmp_path / "record.json"
    script.main(["--model", folder, "--data", tiny_archive, "--out", str(out)])
    record = json.loads(out.read_text())
    assert record["command"].startswith("python -m benchmarks.robustness.export_parity --model")
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    assert head.startswith(record["commit"].split("+")[0]) and record["machine"]["cpu"]
    assert list(record["formats"]) == list(FORMATS) and record["temperature"] == TEMPERATURE


def test_a_run_without_validation_exports_its_final_model(tmp_path):
    """A run trained on every image (val_fraction 0) tests and keeps final.keras, not best.keras."""
    from utils.export import model_file

    folder = tmp_path / "run" / "fast_cnn"
    folder.mkdir(parents=True)
    (folder / "final.keras").write_text("")
    assert model_file(str(folder)) == str(folder / "final.keras")
    (folder / "best.keras").write_text("")
    assert model_file(str(folder)) == str(folder / "best.keras")  # the validation-chosen one first
