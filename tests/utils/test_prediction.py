import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from models import build_model
from tests import ROOT
from utils.errors import ImageFileError, ModelFileError
from utils.prediction import classify_files, image_files, load_classifier, load_image, top_classes
from utils.runs.folders import write_json


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """A PNG and a JPEG of odd sizes, a corrupt PNG, a text file and a non-image in a folder."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)).save(folder / "wide.png")
    Image.fromarray(rng.integers(0, 256, (100, 7, 3), dtype=np.uint8)).save(folder / "tall.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8), mode="L").save(folder / "grey.png")
    good = (folder / "wide.png").read_bytes()
    (folder / "broken.png").write_bytes(good[: len(good) // 2])
    (folder / "notes.txt").write_text("not an image")
    (folder / "fake.jpeg").write_text("not a jpeg either")
    return folder


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A saved lenet with a fitted temperature of 2 beside it, as a run folder keeps them."""
    folder = tmp_path_factory.mktemp("run") / "lenet"
    folder.mkdir()
    build_model("lenet").save(folder / "best.keras")
    write_json(str(folder / "calibration.json"), {"temperature": 2.0})
    return folder / "best.keras"


def test_images_of_any_size_become_32x32_rgb(image_folder):
    for name in ("wide.png", "tall.jpg", "grey.png"):
        image = load_image(str(image_folder / name))
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8


def test_downsizing_is_anti_aliased(tmp_path):
    checkerboard = (np.indices((256, 256)).sum(axis=0) % 2 * 255).astype(np.uint8)
    Image.fromarray(checkerboard).save(tmp_path / "checks.png")
    image = load_image(str(tmp_path / "checks.png")).astype(float)
    assert np.abs(image - 127.5).max() < 10  # fine detail averages to grey instead of aliasing


@pytest.mark.parametrize(
    "name, message",
    [
        ("broken.png", "damaged image"),
        ("notes.txt", "not an image file"),
        ("fake.jpeg", "not an image file"),
        ("missing.png", "no such file"),
    ],
)
def test_unreadable_files_name_the_file(image_folder, name, message):
    path = str(image_folder / name)
    with pytest.raises(ImageFileError, match=message) as error:
        load_image(path)
    assert path in str(error.value)


def test_folders_expand_to_their_images(image_folder):
    names = [os.path.basename(path) for path in image_files([str(image_folder), "x.png"])]
    assert names == ["broken.png", "fake.jpeg", "grey.png", "tall.jpg", "wide.png", "x.png"]


def test_classify_files_keeps_going_after_bad_files(image_folder, saved_model):
    classifier = load_classifier(str(saved_model))
    assert classifier.temperature == 2.0
    predictions, errors = classify_files(classifier, [str(image_folder), str(image_folder / "notes.txt")])
    assert [os.path.basename(p["path"]) for p in predictions] == ["grey.png", "tall.jpg", "wide.png"]
    assert [os.path.basename(e["path"]) for e in errors] == ["broken.png", "fake.jpeg", "notes.txt"]
    for prediction in predictions:
        probabilities = [top["probability"] for top in prediction["top"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)


def test_top_classes_names_and_order():
    probabilities = np.array([0.05, 0.1, 0.5, 0.05, 0.2, 0.02, 0.03, 0.02, 0.02, 0.01])
    assert top_classes(probabilities, 2) == [("bird", 0.5), ("deer", 0.2)]


def test_missing_or_broken_model_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_classifier(str(tmp_path / "best.keras"))
    (tmp_path / "bad.keras").write_text("junk")
    with pytest.raises(ModelFileError, match="could not be loaded"):
        load_classifier(str(tmp_path / "bad.keras"))


def run_predict(*arguments):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "predict.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@pytest.mark.slow  # a training run of several phases or a subprocess
def test_predict_script(image_folder, saved_model):
    result = run_predict(
        str(image_folder / "wide.png"),
        str(image_folder / "broken.png"),
        "--model",
        str(saved_model),
        "--json",
    )
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["temperature"] == 2.0 and len(document["predictions"]) == 1
    assert len(document["predictions"][0]["top"]) == 3
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and error_lines[0].startswith(
        f"error: {image_folder / 'broken.png'}: damaged image"
    )
    plain = run_predict(str(image_folder / "tall.jpg"), "--model", str(saved_model))
    assert plain.returncode == 0
    assert plain.stdout.startswith(f"{image_folder / 'tall.jpg'}: ") and plain.stdout.count("%") == 3


def test_predict_script_without_model(image_folder, tmp_path):
    result = run_predict(str(image_folder / "wide.png"), "--model", str(tmp_path / "none.keras"))
    assert (
        result.returncode == 2 and "error: Model file" in result.stderr and "Traceback" not in result.stderr
    )
