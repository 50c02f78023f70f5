"""Classify your own image files with a saved model: any size of PNG or JPEG, resized to 32x32."""

import dataclasses
import os
from collections.abc import Callable

import keras
import numpy as np
from PIL import Image, UnidentifiedImageError

import models  # noqa: F401  (registers the custom layers a saved model needs)
from utils.analysis.calibration import apply_temperature
from utils.analysis.summary import class_probabilities, saved_temperature
from utils.data.cifar10 import CLASS_NAMES, IMAGE_SHAPE
from utils.errors import ImageFileError, ModelFileError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


@dataclasses.dataclass
class Classifier:
    """A model's calibrated class probabilities, and the temperature behind them (None: as trained)."""

    predict: Callable[[np.ndarray], np.ndarray]
    temperature: float | None

    def probabilities(self, images):
        return self.predict(np.asarray(images, dtype=np.float32))


def _keras_classifier(model_path):
    try:
        model = keras.models.load_model(model_path, compile=False)
    except Exception as error:  # Keras raises many kinds of errors for a broken file
        raise ModelFileError(
            f"Model file {model_path} could not be loaded as a Keras model: {error}"
        ) from error
    temperature = saved_temperature(os.path.dirname(model_path))

    def predict(images):
        raw = class_probabilities(model, images, batch_size=32)
        return raw if temperature is None else apply_temperature(raw, temperature)

    return Classifier(predict, temperature)


def load_classifier(model_path):
    """The model at `model_path`: a .keras file (with the temperature in its folder), or an export
    (SavedModel folder, .tflite, .onnx) whose graph holds its temperature already."""
    if model_path.endswith(".keras") and os.path.isfile(model_path):
        return _keras_classifier(model_path)
    if not os.path.exists(model_path):
        raise ModelFileError(
            f"Model file {model_path} does not exist; pass a run's <model>/best.keras or one of its exports."
        )
    from utils.export import export_temperature, load_export  # TensorFlow's converters load late

    return Classifier(batched_predictor(load_export(model_path).predict), export_temperature(model_path))


def batched_predictor(predict, batch_size=256):
    return lambda images: np.concatenate(
        [predict(images[start : start + batch_size]) for start in range(0, len(images), batch_size)]
    )


def image_files(paths):
    """The given files, and the PNG/JPEG files directly inside the given folders, in order."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
            files += [os.path.join(path, name) for name in names]
        else:
            files.append(path)
    return files


def load_image(path, size=IMAGE_SHAPE[:2]):
    """An RGB uint8 array of the image at `path`, resized to `size` with anti-aliasing.

    Raises:
        ImageFileError: naming the file, when it is missing, not an image, or damaged.
    """
    if not os.path.isfile(path):
        raise ImageFileError(f"{path}: no such file")
    try:
        with Image.open(path) as image:
            image.load()
            rgb = image.convert("RGB")
    except UnidentifiedImageError:
        raise ImageFileError(f"{path}: not an image file that can be read (PNG or JPEG)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageFileError(f"{path}: damaged image ({error})") from None
    return np.asarray(rgb.resize(size[::-1], Image.Resampling.LANCZOS, reducing_gap=3.0))


def top_classes(probabilities, count=3):
    """[(class name, probability)] of the `count` most probable classes, most probable first."""
    order = np.argsort(-probabilities, kind="stable")[:count]
    return [(CLASS_NAMES[index], float(probabilities[index])) for index in order]


def classify_files(classifier, paths, count=3):
    """Classify every readable image among `paths` (files or folders).

    Returns:
        ([{"path", "top": [{"class", "probability"}]}], [{"path", "error"}]).
    """
    loaded, errors = [], []
    for path in image_files(paths):
        try:
            loaded.append((path, load_image(path)))
        except ImageFileError as error:
            errors.append({"path": path, "error": str(error)})
    predictions = []
    if loaded:
        probabilities = classifier.probabilities(np.stack([image for _, image in loaded]))
        for (path, _), row in zip(loaded, probabilities):
            top = [{"class": name, "probability": p} for name, p in top_classes(row, count)]
            predictions.append({"path": path, "top": top})
    return predictions, errors
