import os
import pickle

import numpy as np
import pytest

from tests.conftest import batch_bytes, make_batch, tiny_batches, write_archive, write_folder
from utils.data import cifar10 as cifar
from utils.errors import DataError


def test_archive_and_folder_load_the_same_images(tiny_archive, tiny_folder):
    train_a, test_a = cifar.load_local(tiny_archive)
    train_f, test_f = cifar.load_local(os.path.dirname(tiny_folder))  # parent of cifar-10-batches-py
    assert train_a.images.shape == (150, 32, 32, 3) and train_a.images.dtype == np.uint8
    assert test_a.images.shape == (40, 32, 32, 3)
    np.testing.assert_array_equal(train_a.images, train_f.images)
    np.testing.assert_array_equal(test_a.labels, test_f.labels)
    assert cifar.class_counts(train_a) == dict.fromkeys(cifar.CLASS_NAMES, 15)


def test_rows_become_rgb_images():
    batch = make_batch([3], seed=0)
    images, labels = cifar.read_batch(batch_bytes(batch), "b")
    planes = batch[b"data"].reshape(3, 32, 32)
    np.testing.assert_array_equal(images[0, :, :, 1], planes[1])  # green plane -> channel 1
    assert labels.tolist() == [3]


def test_environment_variable_is_used(tiny_archive, monkeypatch):
    monkeypatch.setenv("CIFAR10_DATA", tiny_archive)
    assert len(cifar.load_cifar10(None)[0]) == 150


def test_missing_path_names_it():
    with pytest.raises(DataError, match="/nowhere/cifar.tar.gz.*does not exist"):
        cifar.load_local("/nowhere/cifar.tar.gz")


def test_missing_batch_file_names_it(tmp_path):
    files = tiny_batches()
    del files["data_batch_3"]
    folder = write_folder(str(tmp_path), files)
    with pytest.raises(DataError, match="data_batch_3 is missing"):
        cifar.load_local(folder)


def test_truncated_archive_names_path(tiny_archive, tmp_path):
    raw = open(tiny_archive, "rb").read()
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=f"{truncated}.*truncated"):
        cifar.load_local(str(truncated))


def test_wrongly_shaped_batch_is_refused(tmp_path):
    files = tiny_batches()
    bad = make_batch([1, 2], seed=0)
    bad[b"data"] = bad[b"data"][:, :1000]
    files["test_batch"] = batch_bytes(bad)
    with pytest.raises(DataError, match="test_batch has the wrong shape"):
        cifar.load_local(write_archive(str(tmp_path / "a.tar.gz"), files))


@pytest.mark.parametrize(
    "labels, message",
    [
        ([0.5, 1.5], "labels of type float64"),
        ([b"\x80", ""], "labels that are not a list of integers"),  # found by test_properties
        ([None, [1, 2]], "labels that are not a list of integers"),
    ],
)
def test_labels_that_are_not_integers_are_refused(labels, message):
    batch = make_batch([1, 2], seed=0)
    batch[b"labels"] = labels
    with pytest.raises(DataError, match=f"data_batch_1 has {message}"):
        cifar.read_batch(batch_bytes(batch), "data_batch_1")


def test_tampered_bytes_are_refused(tmp_path):
    files = tiny_batches()
    files["data_batch_1"] = b"\x80\x02garbage" + files["data_batch_1"][40:]
    with pytest.raises(DataError, match="data_batch_1 is not a valid CIFAR-10 batch"):
        cifar.load_local(write_folder(str(tmp_path), files))


class RunsCode:
    """A pickle payload that would create a file if it were ever unpickled normally."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_that_runs_code_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    files = tiny_batches()
    files["data_batch_2"] = pickle.dumps({b"data": RunsCode(str(marker)), b"labels": []}, protocol=2)
    with pytest.raises(DataError, match="refused global.*open"):
        cifar.load_local(write_folder(str(tmp_path), files))
    assert not marker.exists()


def test_download_failure_explains_local_copy(monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.delenv("CIFAR10_DATA", raising=False)
    with pytest.raises(DataError, match="data_path.*CIFAR10_DATA"):
        cifar.load_cifar10(None)


def test_download_goes_to_the_folder_asked_and_is_read_safely(monkeypatch, tiny_archive, tmp_path):
    import keras

    calls = []

    def fetched(fname, origin, file_hash, cache_dir, cache_subdir):
        calls.append((fname, origin, file_hash, cache_dir, cache_subdir))
        return tiny_archive

    monkeypatch.setattr(keras.utils, "get_file", fetched)
    monkeypatch.delenv("CIFAR10_DATA", raising=False)
    train, test = cifar.load_cifar10(None, download_to=str(tmp_path))
    assert calls == [("cifar-10-python.tar.gz", cifar.CIFAR10_URL, cifar.CIFAR10_SHA256, str(tmp_path), "")]
    assert (len(train), len(test)) == (150, 40)


def test_stratified_split_keeps_class_balance_and_no_overlap(tiny_archive):
    train, test = cifar.load_local(tiny_archive)
    kept, validation = cifar.stratified_split(train, 0.2, seed=0)
    assert len(kept) == 120 and len(validation) == 30
    assert set(cifar.class_counts(validation).values()) == {3}
    flat = lambda split: {img.tobytes() for img in split.images}  # noqa: E731
    assert not flat(kept) & flat(validation)
    assert not flat(validation) & flat(test) and not flat(kept) & flat(test)
    again, _ = cifar.stratified_split(train, 0.2, seed=0)
    np.testing.assert_array_equal(again.labels, kept.labels)


def test_zero_val_fraction_keeps_everything(tiny_archive):
    train, _ = cifar.load_local(tiny_archive)
    kept, validation = cifar.stratified_split(train, 0, seed=0)
    assert validation is None and len(kept) == len(train)


def test_prepare_data_small_run(tiny_archive):
    data = cifar.prepare_data(tiny_archive, val_fraction=0.2, seed=42, small_run=True)
    assert len(data.train) + len(data.validation) == 150  # fewer than 50 per class exist
    summary = cifar.describe(data)
    assert summary["test"]["images"] == (40, 32, 32, 3)
    assert sum(summary["validation"]["class_counts"].values()) == 30
