"""Run by .ci/colab_stack.sh with the Colab-pinned venv's Python: the notebook top to bottom as a
Colab user runs it (its first cell's install step included), then a check that the install changed
no package that was installed before it, but Keras (utils/colab_setup.MAY_UPGRADE)."""

import json
import os
import subprocess
import sys
import tempfile

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from conftest import tiny_batches, write_archive  # noqa: E402  (the suite's tiny data, official format)

from utils.runtime.colab import MAY_UPGRADE, canonical_name  # noqa: E402

LIST_VERSIONS = (
    "import json; from importlib import metadata; "
    "print(json.dumps({d.metadata['Name']: d.version for d in metadata.distributions()}))"
)


def installed():
    """{canonical name: version} of this venv, read by a fresh process."""
    listing = subprocess.run(
        [sys.executable, "-c", LIST_VERSIONS], capture_output=True, text=True, check=True
    )
    return {canonical_name(name): version for name, version in json.loads(listing.stdout).items()}


def run_notebook(folder):
    """Execute the notebook with small_run on tiny data, as on Colab (COLAB_RELEASE_TAG set)."""
    overrides = {
        "data_path": write_archive(os.path.join(folder, "cifar-10-python.tar.gz"), tiny_batches()),
        "small_run": True,
        "output_dir": os.path.join(folder, "runs"),
        "weights": None,
        "fine_tune_epochs": 1,
        "batch_size": 32,
        "verbose": 0,
    }
    notebook = nbformat.read(os.path.join(ROOT, "image_classification_main.ipynb"), as_version=4)
    (index,) = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    injected = f"overrides = {overrides!r}\nsearch_trials = 1"
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(injected))
    os.environ["COLAB_RELEASE_TAG"] = "ci-colab-pinned-stack"
    NotebookClient(
        notebook, kernel_name="python3", timeout=1800, resources={"metadata": {"path": ROOT}}
    ).execute()
    nbformat.write(notebook, os.path.join(folder, "executed.ipynb"))
    (run,) = os.listdir(overrides["output_dir"])
    with open(os.path.join(overrides["output_dir"], run, "metrics.json"), encoding="utf-8") as handle:
        metrics = json.load(handle)
    (setup,) = [cell for cell in notebook.cells if "install_missing(" in cell.source]
    return metrics, setup.outputs


def main():
    before = installed()
    with tempfile.TemporaryDirectory() as folder:
        metrics, first_cell_outputs = run_notebook(folder)
    after = installed()
    changed = {
        name: (version, after.get(name)) for name, version in before.items() if after.get(name) != version
    }
    held = {name: change for name, change in changed.items() if name not in MAY_UPGRADE}
    print("Runtime:", " ".join(output.get("text", "") for output in first_cell_outputs).strip())
    print("Test accuracy per model:", {name: round(row["test_accuracy"], 3) for name, row in metrics.items()})
    print("Installed by the notebook:", sorted(f"{name} {after[name]}" for name in set(after) - set(before)))
    print("Raised by it:", {name: change for name, change in changed.items() if name in MAY_UPGRADE})
    if held:
        sys.exit(f"The Colab install step changed packages it must hold: {held}")
    print(f"Colab stack: the notebook ran top to bottom; {len(before) - len(changed)} packages held.")


if __name__ == "__main__":
    main()
