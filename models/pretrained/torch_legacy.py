"""Read PyTorch's legacy (pre-1.6, non-zip) `torch.save` files into numpy arrays, without torch.

The legacy format is a sequence of pickles followed by raw storage bytes:

1. the magic number, 2. the protocol version (1001), 3. system info (endianness, type sizes),
4. the saved object, whose tensors are `torch._utils._rebuild_tensor_v2(storage, offset, size,
   stride, ...)` calls with each storage given as a persistent id
   `("storage", torch.<Type>Storage, key, location, numel, view_metadata)`,
5. the list of storage keys, then for each key in that order: its element count (int64,
   little-endian) and its raw data.

Only the globals those pickles need are allowed, and they map to our own functions, so a
file can materialise tensors, ordered dicts and plain values, and nothing else: a pickle
that names any other global is refused before anything runs.
"""

import collections
import dataclasses
import pickle
import struct

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchFileError(ValueError):
    """The file is not a legacy PyTorch file of tensors, or it is corrupt."""


@dataclasses.dataclass(frozen=True)
class _StorageType:
    dtype: type


@dataclasses.dataclass
class _Storage:
    key: str
    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclasses.dataclass
class _TensorRef:
    """A tensor to cut out of its storage once the storages have been read."""

    storage: _Storage
    offset: int
    shape: tuple
    stride: tuple

    def materialise(self):
        flat = self.storage.data
        if not self.shape:
            return flat[self.offset].copy()
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride)) + 1
        if needed > flat.size:
            raise TorchFileError(f"tensor of shape {self.shape} overruns storage {self.storage.key}")
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.shape, strides=[s * flat.itemsize for s in self.stride]
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, shape, stride, *unused):
    return _TensorRef(storage, int(offset), tuple(shape), tuple(stride))


class _TensorUnpickler(pickle.Unpickler):
    """Unpickles the saved object, allowing only tensor reconstruction and ordered dicts."""

    def __init__(self, file):
        super().__init__(file, encoding="utf-8")
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        raise TorchFileError(f"refused global {module}.{name}: only tensors can be loaded")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise TorchFileError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise TorchFileError(f"storage {key} has no known element type")
        if key not in self.storages:
            self.storages[key] = _Storage(str(key), storage_type.dtype, int(numel))
        return self.storages[key]


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles the header and key-list pickles, which hold plain values only."""

    def find_class(self, module, name):
        raise TorchFileError(f"refused global {module}.{name} in a header")


def _read_plain(file):
    return _PlainUnpickler(file, encoding="utf-8").load()


def _read_storages(file, storages, keys):
    for key in keys:
        if key not in storages:
            raise TorchFileError(f"storage {key} is listed but used by no tensor")
        storage = storages[key]
        header = file.read(8)
        if len(header) != 8:
            raise TorchFileError(f"file ends before storage {key}")
        (numel,) = struct.unpack("<q", header)
        if numel != storage.numel:
            raise TorchFileError(f"storage {key} holds {numel} elements, {storage.numel} expected")
        size = numel * np.dtype(storage.dtype).itemsize
        raw = file.read(size)
        if len(raw) != size:
            raise TorchFileError(f"file ends inside storage {key} (truncated?)")
        storage.data = np.frombuffer(raw, dtype=np.dtype(storage.dtype).newbyteorder("<")).astype(
            storage.dtype
        )


def _materialise(value):
    if isinstance(value, _TensorRef):
        return value.materialise()
    if isinstance(value, dict):
        return collections.OrderedDict((key, _materialise(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_materialise(item) for item in value)
    return value


def load_legacy_torch_file(path):
    """Load a legacy `torch.save` file; tensors become numpy arrays.

    Raises:
        TorchFileError: for a file of another format, a global other than the tensor
            machinery, a storage mismatch or a truncated file; the message names the path.
    """
    try:
        with open(path, "rb") as file:
            if _read_plain(file) != MAGIC_NUMBER:
                raise TorchFileError("not a legacy PyTorch file (wrong magic number)")
            if _read_plain(file) != PROTOCOL_VERSION:
                raise TorchFileError("unsupported protocol version")
            system = _read_plain(file)
            if not system.get("little_endian", False):
                raise TorchFileError("big-endian files are not supported")
            unpickler = _TensorUnpickler(file)
            saved = unpickler.load()
            keys = _read_plain(file)
            _read_storages(file, unpickler.storages, keys)
    except TorchFileError as error:
        raise TorchFileError(f"{path}: {error}") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as error:
        raise TorchFileError(f"{path} is not a readable legacy PyTorch file: {error}") from error
    return _materialise(saved)
