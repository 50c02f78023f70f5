"""The Python, TensorFlow and Keras versions the project supports, checked before any work.

The floors are where a feature or a test starts: Keras 3.15 brings `keras.optimizers.MultiOptimizer`
(the `muon_sgd` optimizer of the `fast_muon` preset) and needs Python 3.11; TensorFlow 2.20 is the
oldest tested, the one Colab's GPU runtime ships (.ci/colab-gpu-constraints.txt). requirements.txt
states the same floors (a test keeps them equal). This module imports neither TensorFlow nor Keras,
so it can run before the Colab install step and tell an old Keras still loaded in the session.
"""

import re
import sys
from importlib import metadata

from utils.errors import VersionError

PYTHON_FLOOR = (3, 11)
# package -> (floor, the distributions that provide it)
PACKAGE_FLOORS = {
    "tensorflow": ((2, 20), ("tensorflow", "tensorflow-cpu", "tf-nightly", "tensorflow-macos")),
    "keras": ((3, 15), ("keras",)),
}


def release(version):
    """The leading numbers of a version string: "3.13.2" -> (3, 13, 2), "2.20.0rc1" -> (2, 20, 0)."""
    match = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(part) for part in match[0].split(".")) if match else ()


def installed_version(distributions):
    """The version of the first of `distributions` that is installed, or None."""
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _dotted(numbers):
    return ".".join(map(str, numbers))


def version_problems(python=sys.version_info, find=installed_version, loaded=sys.modules):
    """One sentence per version below the supported range (empty: all supported)."""
    problems = []
    if tuple(python[:2]) < PYTHON_FLOOR:
        problems.append(
            f"Python {python[0]}.{python[1]} runs this; the project needs Python >= {_dotted(PYTHON_FLOOR)}"
        )
    for package, (floor, distributions) in PACKAGE_FLOORS.items():
        found = find(distributions)
        wanted = f'{package} >= {_dotted(floor)} (pip install -U "{package}>={_dotted(floor)}")'
        if found is None:
            problems.append(f"{package} is not installed; the project needs {wanted}")
        elif release(found) < floor:
            problems.append(f"{package} {found} is installed; the project needs {wanted}")
        elif package in loaded and getattr(loaded[package], "__version__", found) != found:
            problems.append(
                f"{package} {loaded[package].__version__} is loaded in this session but {found} is "
                "installed: restart the session (Colab: Runtime > Restart session), then run again"
            )
    return problems


def check_versions():
    """Raise VersionError, one line naming each package, its version and the one needed."""
    problems = version_problems()
    if problems:
        raise VersionError("; ".join(problems) + ".")


def exit_if_unsupported():
    """For the command lines: print the one line and exit with status 2 when a version is too old."""
    try:
        check_versions()
    except VersionError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
