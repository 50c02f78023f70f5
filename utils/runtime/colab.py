"""Colab's first step: install what the project needs and the runtime lacks, replacing nothing else.

Colab ships TensorFlow, the Jupyter stack and most of what the project uses; replacing any of them
under a running kernel can crash the runtime. `install_missing` runs the kernel's own pip (what
`%pip` runs, but failing loudly) on requirements-colab.txt with every installed distribution pinned
as a constraint, except those the file may raise (Keras, where Colab's is older than the supported
range): pip adds what is missing, and where that would replace anything else it stops and says so.
This module imports neither TensorFlow nor Keras, so nothing old is loaded before the install.
"""

import os
import re
import subprocess
import sys
import tempfile
from importlib import metadata

from packaging.version import InvalidVersion, Version

from utils.errors import InstallError

REQUIREMENTS = "requirements-colab.txt"
MAY_UPGRADE = frozenset({"keras"})


def in_colab():
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def canonical_name(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_pins(exempt=MAY_UPGRADE):
    """`name==version` for each installed distribution (the first found of a name) but `exempt`,
    skipping versions pip could not parse."""
    pins = {}
    for distribution in metadata.distributions():
        name = canonical_name(distribution.metadata["Name"] or "")
        if not name or name in exempt or name in pins:
            continue
        try:
            pins[name] = str(Version(distribution.version))
        except InvalidVersion:
            continue
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def install_missing(requirements=REQUIREMENTS, run=subprocess.run):
    """pip-install `requirements` into this kernel's Python with every other installed package held.

    Raises:
        InstallError: when pip fails (its last lines are in the message).
    """
    with tempfile.NamedTemporaryFile("w", suffix="-installed.txt", delete=False) as constraints:
        constraints.write("\n".join(installed_pins()) + "\n")
    command = [sys.executable, "-m", "pip", "install", "-q", "-r", requirements, "-c", constraints.name]
    try:
        done = run(command, capture_output=True, text=True)
    finally:
        os.remove(constraints.name)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        raise InstallError(
            f"pip could not install {requirements} without replacing an installed package "
            f"(exit {done.returncode}):\n{tail}"
        )
    return done
