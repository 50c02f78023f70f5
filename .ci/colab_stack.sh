#!/usr/bin/env bash
# The notebook on Colab's own stack: a fresh venv pinned to .ci/colab-gpu-constraints.txt (Python 3.12
# where the machine has one), the notebook's Colab install step, the notebook top to bottom with
# small_run, and a check that the install replaced nothing but Keras. Needs no GPU and no network
# beyond the package registry.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-colab
for PYTHON in "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12 python3.12 python3; do
    "$PYTHON" -c "import sys" >/dev/null 2>&1 && break  # the first that runs (a pyenv shim may not)
done
echo "Colab stack on $("$PYTHON" --version)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r .ci/colab-gpu-constraints.txt
"$VENV/bin/python" .ci/colab_stack.py
