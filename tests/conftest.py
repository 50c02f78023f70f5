"""Fixtures: tiny CIFAR-10 copies in the official python format, written by the tests."""

import io
import os
import pickle
import tarfile

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from utils.data.cifar10 import BATCH_FOLDER, TEST_BATCH, TRAIN_BATCHES  # noqa: E402

IMAGES_PER_CLASS_PER_BATCH = 3  # 5 batches -> 15 training images per class
TEST_IMAGES_PER_CLASS = 4


def make_batch(labels, seed):
    """An official-format batch dict whose images are easy to tell apart by class."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    # Each class gets its own mean colour, so a model can learn the task quickly.
    base = (labels[:, None] * 25 + 5).astype(np.int16)
    data = np.clip(base + rng.integers(-20, 20, size=(len(labels), 3072)), 0, 255).astype(np.uint8)
    return {
        b"batch_label": b"tiny batch",
        b"labels": labels.tolist(),
        b"data": data,
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(labels))],
    }


def batch_bytes(batch):
    return pickle.dumps(batch, protocol=2)


def tiny_batches():
    """{file name: pickled bytes} for the five training batches and the test batch."""
    per_class = np.repeat(np.arange(10), IMAGES_PER_CLASS_PER_BATCH)
    files = {name: batch_bytes(make_batch(per_class, seed)) for seed, name in enumerate(TRAIN_BATCHES)}
    files[TEST_BATCH] = batch_bytes(make_batch(np.repeat(np.arange(10), TEST_IMAGES_PER_CLASS), 99))
    files["batches.meta"] = pickle.dumps({b"label_names": [b"x"] * 10}, protocol=2)
    return files


def write_folder(root, files):
    folder = os.path.join(root, BATCH_FOLDER)
    os.makedirs(folder)
    for name, raw in files.items():
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(raw)
    return folder


def write_archive(path, files):
    with tarfile.open(path, "w:gz") as archive:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"{BATCH_FOLDER}/{name}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return path


@pytest.fixture(autouse=True)
def float32_policy():
    """Each test starts in float32: pipeline runs set Keras's global precision policy."""
    import keras

    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory):
    """Path of a tiny cifar-10-python.tar.gz (150 train, 40 test images)."""
    root = tmp_path_factory.mktemp("cifar_archive")
    return write_archive(str(root / "cifar-10-python.tar.gz"), tiny_batches())


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """Path of a tiny extracted cifar-10-batches-py folder."""
    return write_folder(str(tmp_path_factory.mktemp("cifar_folder")), tiny_batches())


@pytest.fixture
def tiny_args(tiny_archive, tmp_path):
    """Overrides for a fast run on the tiny archive, writing into tmp_path."""
    return {
        "data_path": tiny_archive,
        "output_dir": str(tmp_path / "runs"),
        "batch_size": 32,
        "verbose": 0,
        "precision": "float32",
        "val_fraction": 0.2,
    }
