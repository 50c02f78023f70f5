"""CIFAR-10 loading (local archive, folder or Keras download), safe unpickling and splits."""

import codecs
import dataclasses
import io
import os
import pickle
import tarfile

import numpy as np
from sklearn.model_selection import train_test_split

from utils.config.settings import SMALL_RUN_TEST_PER_CLASS, SMALL_RUN_TRAIN_PER_CLASS
from utils.errors import ConfigError, DataError

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (32, 32, 3)
BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
TEST_BATCH = "test_batch"
ENV_VARIABLE = "CIFAR10_DATA"

# The only globals a CIFAR-10 batch pickle needs: numpy's array reconstruction, and
# codecs.encode, a pure function that protocol-2 pickles written by Python 3 use for bytes.
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"): codecs.encode,
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


@dataclasses.dataclass
class Split:
    """Images (N, 32, 32, 3) uint8 and integer labels (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self):
        return len(self.labels)


@dataclasses.dataclass
class Cifar10:
    """The three splits used by a run; `validation` is None when val_fraction is 0."""

    train: Split
    validation: Split | None
    test: Split
    class_names: tuple = CLASS_NAMES


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can build numpy arrays and plain containers, nothing else."""

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused global {module}.{name}: only numpy arrays are allowed"
            ) from None


def read_batch(raw, source):
    """Parse one official batch pickle into (images NHWC uint8, labels int64).

    Args:
        raw: the file's bytes.
        source: the path shown in errors.
    """
    try:
        batch = _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as error:  # any parse failure means a corrupt or hostile file
        raise DataError(f"{source} is not a valid CIFAR-10 batch: {error}") from error
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{source} is not a CIFAR-10 batch: expected a dict with data and labels.")
    data = batch[b"data"]
    try:
        labels = np.asarray(batch[b"labels"])
    except (TypeError, ValueError) as error:  # ragged lists, undecodable bytes, ...
        raise DataError(f"{source} has labels that are not a list of integers: {error}") from error
    if labels.size and labels.dtype.kind not in "iu":
        raise DataError(
            f"{source} has labels of type {labels.dtype}; expected integers 0..{NUM_CLASSES - 1}."
        )
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
        or labels.shape != (len(data),)
    ):
        raise DataError(
            f"{source} has the wrong shape: expected uint8 data (N, 3072) and N labels, got "
            f"data {getattr(data, 'shape', None)} {getattr(data, 'dtype', None)} and "
            f"{labels.shape} labels."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{source} has labels outside 0..{NUM_CLASSES - 1}.")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _read_members_from_archive(path, names):
    try:
        with tarfile.open(path, "r:*") as archive:
            found = {}
            for member in archive:
                base = os.path.basename(member.name)
                if base in names and member.isfile():
                    found[base] = archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable CIFAR-10 archive (truncated?): {error}") from error
    missing = [name for name in names if name not in found]
    if missing:
        raise DataError(f"{path} lacks {missing}; expected the official cifar-10-python.tar.gz.")
    return found


def _read_members_from_folder(path, names):
    folder = path
    if os.path.isdir(os.path.join(path, BATCH_FOLDER)):
        folder = os.path.join(path, BATCH_FOLDER)
    found = {}
    for name in names:
        file = os.path.join(folder, name)
        if not os.path.isfile(file):
            raise DataError(f"{file} is missing; expected the files of {BATCH_FOLDER}/ there.")
        with open(file, "rb") as handle:
            found[name] = handle.read()
    return found


def load_local(path):
    """Load CIFAR-10 from the official archive or its extracted folder.

    Returns:
        (train Split, test Split) with all 50,000 / 10,000 images of a full copy.
    """
    names = TRAIN_BATCHES + (TEST_BATCH,)
    if os.path.isdir(path):
        raw = _read_members_from_folder(path, names)
    elif os.path.isfile(path):
        raw = _read_members_from_archive(path, names)
    else:
        raise DataError(
            f"CIFAR-10 data path {path!r} does not exist. Give the cifar-10-python.tar.gz "
            f"archive or its extracted {BATCH_FOLDER} folder."
        )
    train_parts = [read_batch(raw[name], os.path.join(path, name)) for name in TRAIN_BATCHES]
    test = read_batch(raw[TEST_BATCH], os.path.join(path, TEST_BATCH))
    train = (np.concatenate([p[0] for p in train_parts]), np.concatenate([p[1] for p in train_parts]))
    return Split(*train), Split(*test)


CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"


def download_cifar10(folder=None):
    """The path of the official archive, downloaded once by Keras (checksum verified) into
    `folder`, or Keras's cache (~/.keras/datasets) when None; read like any local copy."""
    import keras

    try:
        return keras.utils.get_file(
            "cifar-10-python.tar.gz",
            origin=CIFAR10_URL,
            file_hash=CIFAR10_SHA256,
            cache_dir=folder,
            cache_subdir="" if folder else "datasets",
        )
    except Exception as error:  # the download raises many kinds of network errors
        raise DataError(
            f"Downloading CIFAR-10 with Keras failed ({error}). Without internet, use a local "
            "copy: set args['data_path'] (or the CIFAR10_DATA environment variable) to "
            f"cifar-10-python.tar.gz or its extracted {BATCH_FOLDER} folder."
        ) from error


def resolve_data_path(data_path):
    """The local copy to read: `data_path`, else $CIFAR10_DATA, else None (download)."""
    return data_path or os.environ.get(ENV_VARIABLE) or None


def load_cifar10(data_path=None, download_to=None):
    """Load the full train and test splits from a local copy, else from the official archive
    downloaded into `download_to` (None: Keras's cache)."""
    return load_local(resolve_data_path(data_path) or download_cifar10(download_to))


def take_per_class(split, per_class):
    """The first `per_class` images of each class, in their original order."""
    keep = np.concatenate([np.flatnonzero(split.labels == c)[:per_class] for c in range(NUM_CLASSES)])
    keep.sort()
    return Split(split.images[keep], split.labels[keep])


def stratified_split(split, val_fraction, seed):
    """Hold out a class-stratified `val_fraction` of `split` for validation.

    Returns:
        (train Split, validation Split or None when val_fraction is 0).
    """
    if val_fraction == 0:
        return split, None
    indices = np.arange(len(split))
    train_idx, val_idx = train_test_split(
        indices, test_size=val_fraction, stratify=split.labels, random_state=seed
    )
    train_idx.sort()
    val_idx.sort()
    return (
        Split(split.images[train_idx], split.labels[train_idx]),
        Split(split.images[val_idx], split.labels[val_idx]),
    )


def check_validation_split(val_fraction):
    """Raise ConfigError when args hold out no validation split (`val_fraction` 0) to choose by:
    a search chooses by validation accuracy, never on the test set."""
    if val_fraction == 0:
        raise ConfigError(
            "args['val_fraction'] = 0 leaves no validation split to choose by; a search needs one "
            "(e.g. --set val_fraction=0.1), never the test set."
        )


def prepare_data(data_path, val_fraction, seed, small_run=False, download_to=None):
    """Load CIFAR-10 from `data_path` (see `load_cifar10`), keep a small subset for a `small_run`,
    and hold out a stratified `val_fraction` of the training set, split by `seed`; a download goes
    to `download_to` (None: Keras's cache)."""
    train, test = load_cifar10(data_path, download_to)
    if small_run:
        train = take_per_class(train, SMALL_RUN_TRAIN_PER_CLASS)
        test = take_per_class(test, SMALL_RUN_TEST_PER_CLASS)
    train, validation = stratified_split(train, val_fraction, seed)
    return Cifar10(train=train, validation=validation, test=test)


def class_counts(split):
    """Images per class name."""
    counts = np.bincount(split.labels, minlength=NUM_CLASSES)
    return dict(zip(CLASS_NAMES, counts.tolist()))


def describe(data):
    """Shapes, dtypes and class counts of each split, as a printable dict."""
    splits = {"train": data.train, "validation": data.validation, "test": data.test}
    return {
        name: {
            "images": tuple(split.images.shape),
            "dtype": str(split.images.dtype),
            "class_counts": class_counts(split),
        }
        for name, split in splits.items()
        if split is not None
    }
