"""The supported range: stated once in utils/runtime/versions.py, equal in requirements.txt, and a version
below it refused in one line before any work."""

import os
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

from tests import ROOT
from utils.errors import VersionError
from utils.runtime.versions import PACKAGE_FLOORS, check_versions, release, version_problems


def requirement_floors():
    """{name: floor} of the requirement files' `>=` bounds (following -r includes)."""
    floors = {}

    def read(name):
        with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
            for line in handle:
                line = line.split("#")[0].strip()
                if line.startswith("-r "):
                    read(line[3:].strip())
                elif line:
                    requirement = Requirement(line)
                    for spec in requirement.specifier:
                        if spec.operator == ">=":
                            floors[requirement.name] = release(spec.version)

    read("requirements.txt")
    return floors


def test_requirements_state_the_checked_floors():
    floors = requirement_floors()
    for package, (floor, _) in PACKAGE_FLOORS.items():
        assert floors[package] == floor, package


def test_supported_versions_pass():
    found = {"tensorflow": "2.20.0", "keras": "3.15.1"}
    assert version_problems(python=(3, 12), find=lambda names: found[names[0]], loaded={}) == []
    check_versions()  # this environment is in the range


@pytest.mark.parametrize(
    ("python", "versions", "expected"),
    [
        (
            (3, 10),
            {"tensorflow": "2.20.0", "keras": "3.15.0"},
            "Python 3.10 runs this; the project needs Python >= 3.11",
        ),
        (
            (3, 12),
            {"tensorflow": "2.19.1", "keras": "3.15.0"},
            "tensorflow 2.19.1 is installed; the project needs tensorflow >= 2.20",
        ),
        (
            (3, 12),
            {"tensorflow": "2.20.0", "keras": "3.13.2"},
            "keras 3.13.2 is installed; the project needs keras >= 3.15",
        ),
        (
            (3, 12),
            {"tensorflow": "2.20.0", "keras": None},
            "keras is not installed; the project needs keras >= 3.15",
        ),
    ],
)
def test_each_version_below_the_range_is_named_with_what_is_needed(python, versions, expected):
    (problem,) = version_problems(python=python, find=lambda names: versions[names[0]], loaded={})
    assert problem.startswith(expected)


def test_an_old_keras_still_loaded_after_the_install_asks_for_a_restart():
    class OldKeras:
        __version__ = "3.13.2"

    found = {"tensorflow": "2.20.0", "keras": "3.15.1"}
    (problem,) = version_problems(
        python=(3, 12), find=lambda names: found[names[0]], loaded={"keras": OldKeras}
    )
    assert "keras 3.13.2 is loaded in this session but 3.15.1 is installed: restart the session" in problem


FAKE_OLD_KERAS = """
import importlib.metadata as metadata, runpy, sys
real = metadata.version
metadata.version = lambda name: "3.13.2" if name == "keras" else real(name)
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("script", ["train.py", "tune.py", "predict.py", "export.py"])
def test_command_lines_refuse_an_old_keras_in_one_line_before_any_work(script, tmp_path):
    arguments = {"predict.py": ["x.png", "--model", "m"], "export.py": [str(tmp_path / "runs")]}.get(
        script, ["--set", f"output_dir={tmp_path / 'runs'}"]
    )
    done = subprocess.run(
        [sys.executable, "-c", FAKE_OLD_KERAS, script, *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        'error: keras 3.13.2 is installed; the project needs keras >= 3.15 (pip install -U "keras>=3.15").'
    ]
    assert not (tmp_path / "runs").exists()


def test_version_error_is_a_project_error():
    from utils.errors import ProjectError

    assert issubclass(VersionError, ProjectError)
