"""Property-based tests of hostile and broken input: every failure is the project's own error with
a message, never a raw traceback, and nothing runs from a pickle. Derandomized, so CI repeats them."""

import io
import os
import pickle
import tarfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import tiny_batches, write_folder
from utils.config.resolve import resolve_args
from utils.config.settings import SETTINGS
from utils.data.cifar10 import BATCH_FOLDER, TEST_BATCH, TRAIN_BATCHES, load_local, read_batch
from utils.errors import ConfigError, DataError

CASES = 300  # examples per property
PROPERTY = settings(max_examples=CASES, derandomize=True, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
keys = st.sampled_from(sorted(SETTINGS)) | st.text(max_size=20)


@PROPERTY
@given(st.dictionaries(keys, json_values, max_size=6))
def test_args_validator_accepts_or_names_the_problem(overrides):
    try:
        args = resolve_args(overrides)
    except ConfigError as error:
        assert str(error).startswith(("Unknown args key", "args[", "Unknown model")), str(error)
        return
    assert set(args) == set(SETTINGS)
    resolved = ("epochs", "fine_tune_epochs", "model_args")  # small_run shortens; null gives the recipes
    assert all(args[key] == value for key, value in overrides.items() if key not in resolved)


@PROPERTY
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_are_refused_as_a_batch(raw):
    with pytest.raises(DataError, match="batch"):
        read_batch(raw, "data_batch_1")


def _pickle_values():
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(-(2**40), 2**40)
        | st.binary(max_size=16)
        | st.text(max_size=8)
        | st.builds(lambda n: np.zeros((n, 3072), np.uint8), st.integers(0, 3))
        | st.builds(lambda n: np.zeros(n, np.float32), st.integers(0, 3))
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from([b"data", b"labels", b"x"]), inner)
        ),
        max_leaves=6,
    )


@PROPERTY
@given(_pickle_values(), st.integers(0, 5))
def test_arbitrary_pickled_structures_are_refused_or_well_formed(value, protocol):
    try:
        images, labels = read_batch(pickle.dumps(value, protocol=protocol), "data_batch_1")
    except DataError:
        return
    assert images.shape[1:] == (32, 32, 3) and images.dtype == np.uint8 and labels.shape == (len(images),)


@settings(PROPERTY, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    module=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=12),
    name=st.sampled_from(["system", "popen", "exec", "eval", "remove", "getattr"]),
    tail=st.binary(max_size=64),
)
def test_pickles_naming_any_global_run_nothing(tmp_path, module, name, tail):
    marker = tmp_path / "ran"
    command = f"touch {marker}".encode()
    raw = b"c" + module.encode() + b"\n" + name.encode() + b"\n(S'" + command + b"'\ntR" + tail
    for hostile in (raw, b"cos\nsystem\n(S'" + command + b"'\ntR."):
        with pytest.raises(DataError):
            read_batch(hostile, "data_batch_1")
    assert not marker.exists()


@pytest.fixture(scope="module")
def archive_bytes():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, raw in tiny_batches().items():
            info = tarfile.TarInfo(f"{BATCH_FOLDER}/{name}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


@settings(PROPERTY, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.floats(0.0, 0.999))
def test_truncated_archives_are_refused_with_their_path(archive_bytes, tmp_path, cut):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(archive_bytes[: int(len(archive_bytes) * cut)])
    with pytest.raises(DataError, match=str(path)):
        load_local(str(path))


@settings(PROPERTY, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sets(st.sampled_from(TRAIN_BATCHES + (TEST_BATCH,)), min_size=1))
def test_folders_with_missing_files_name_one(tmp_path_factory, removed):
    folder = write_folder(str(tmp_path_factory.mktemp("cifar")), tiny_batches())
    for name in removed:
        os.remove(os.path.join(folder, name))
    with pytest.raises(DataError, match="is missing") as error:
        load_local(folder)
    assert any(name in str(error.value) for name in removed)
