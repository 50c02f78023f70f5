"""The notebook, executed top to bottom with the small-run switch on the tiny archive."""

import csv
import os
import signal
import threading
import time

import papermill
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from tests import ROOT
from utils.config.settings import DEFAULTS
from utils.runs.folders import read_json

pytestmark = pytest.mark.slow  # executes the notebook in a kernel

NOTEBOOK = os.path.join(ROOT, "image_classification_main.ipynb")


def test_notebook_runs_top_to_bottom(tiny_archive, tmp_path):
    output_dir = tmp_path / "runs"
    overrides = {
        "data_path": tiny_archive,
        "small_run": True,
        "output_dir": str(output_dir),
        "weights": None,
        "fine_tune_epochs": 1,
        "batch_size": 32,
        "verbose": 0,
        "precision": "float32",
    }
    executed = tmp_path / "executed.ipynb"
    papermill.execute_notebook(
        NOTEBOOK,
        str(executed),
        parameters={"overrides": overrides, "search_trials": 2},
        cwd=os.path.dirname(NOTEBOOK),
        kernel_name="python3",
        progress_bar=False,
    )
    (run_dir,) = output_dir.iterdir()
    search_rows = (run_dir / "search" / "trials.csv").read_text().splitlines()[1:]
    assert len(search_rows) == 2 and all(",COMPLETED," in row for row in search_rows)
    assert (run_dir / "search" / "best_args.json").is_file()
    metrics = read_json(str(run_dir / "metrics.json"))
    assert list(metrics) == DEFAULTS["models"]
    assert all(0 <= row["test_accuracy"] <= 1 for row in metrics.values())
    for name in metrics:
        assert (run_dir / name / "best.keras").is_file() or (run_dir / name / "final.keras").is_file()
        for file in (
            "curves.png",
            "analysis.json",
            "confusion.png",
            "reliability.png",
            "gradcam.png",
        ):
            assert (run_dir / name / file).is_file(), (name, file)
    assert read_json(str(run_dir / "vgg16" / "state.json"))["phases"]["fine_tune"]["done"]
    for figure in (
        "samples.png",
        "augmentation.png",
        "curves_overlay.png",
        "predictions.png",
        "per_class_f1.png",
    ):
        assert (run_dir / figure).is_file()
    (exported,) = run_dir.glob("*/export/export.json")  # "Use your model": the best model's exports
    formats = read_json(str(exported))["formats"]
    assert list(formats) == ["saved_model", "tflite", "tflite_float16", "tflite_int8", "onnx"]
    assert all(formats[name]["passes"] for name in ("saved_model", "tflite", "onnx"))
    text = executed.read_text()
    assert "Best model:" in text and "McNemar p" in text and "| tflite_int8 |" in text
    assert "transfer learning helps most on" in text and "Most robust to the corruptions" in text


def _code_cells():
    import json

    with open(NOTEBOOK, encoding="utf-8") as handle:
        cells = json.load(handle)["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def test_notebook_trains_the_default_models_of_the_settings():
    (args_cell,) = [cell for cell in _code_cells() if cell.startswith("args = {")]
    namespace = {}
    exec(args_cell, namespace)
    assert namespace["args"]["models"] == DEFAULTS["models"]


def test_each_step_cell_holds_one_to_three_statements():
    """The logic lives in utils/steps.py; past the setup, imports and args cells, a cell is a few calls."""
    import ast

    steps = [cell for cell in _code_cells()[3:] if not cell.startswith("args = {")]
    counts = {
        cell.splitlines()[0]: len(ast.parse(cell.replace("%matplotlib inline", "")).body) for cell in steps
    }
    assert all(1 <= count <= 3 for count in counts.values()), counts


def _client(overrides):
    """A notebook client for the notebook with `overrides` injected as papermill would."""
    notebook = parameterize_notebook(load_notebook_node(NOTEBOOK), {"overrides": overrides})
    return NotebookClient(
        notebook, kernel_name="python3", resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}}
    )


def _run_all_cells(client):
    for index, cell in enumerate(client.nb.cells):
        client.execute_cell(cell, index)


def _outputs_text(client):
    return "".join(output.get("text", "") for cell in client.nb.cells for output in cell.get("outputs", []))


def _history_epochs(run_dir, model):
    with open(run_dir / model / "history.csv", newline="", encoding="utf-8") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def _lenet_overrides(tiny_archive, output_dir, epochs):
    return {
        "data_path": tiny_archive,
        "models": ["lenet"],
        "epochs": epochs,
        "output_dir": str(output_dir),
        "batch_size": 16,
        "verbose": 0,
        "precision": "float32",
    }


def test_rerunning_every_cell_in_the_same_kernel_starts_a_clean_second_run(tiny_archive, tmp_path):
    client = _client(_lenet_overrides(tiny_archive, tmp_path / "runs", epochs=2))
    with client.setup_kernel():
        _run_all_cells(client)
        _run_all_cells(client)  # "Run all" again: a finished run is kept, a new one starts
    first, second = sorted((tmp_path / "runs").iterdir())
    for run_dir in (first, second):
        assert _history_epochs(run_dir, "lenet") == [0, 1]
        assert "lenet" in read_json(str(run_dir / "metrics.json"))
    text = _outputs_text(client)
    assert f"Run folder: {second} (new)" in text and "lenet: 2 epochs in" in text


def test_a_rerun_after_the_kernel_dies_mid_training_resumes_the_same_run(tiny_archive, tmp_path):
    """A Colab disconnect: the kernel is killed during training, a fresh kernel reruns every cell."""
    epochs, output_dir = 8, tmp_path / "runs"
    overrides = _lenet_overrides(tiny_archive, output_dir, epochs)
    client = _client(overrides)
    with client.setup_kernel():
        history = None
        for index, cell in enumerate(client.nb.cells):
            if "train_models(" in cell.source:
                killer = threading.Thread(target=_kill_after_first_epoch, args=(client, output_dir))
                killer.start()
                with pytest.raises(DeadKernelError):
                    client.execute_cell(cell, index)
                killer.join()
                (run_dir,) = output_dir.iterdir()
                history = _history_epochs(run_dir, "lenet")
                break
            client.execute_cell(cell, index)
    assert history and len(history) < epochs, "the kill landed during training"
    assert not (run_dir / "metrics.json").exists()

    rerun = _client(overrides)
    with rerun.setup_kernel():
        _run_all_cells(rerun)
    assert list(output_dir.iterdir()) == [run_dir]
    assert f"Run folder: {run_dir} (resumed)" in _outputs_text(rerun)
    assert _history_epochs(run_dir, "lenet") == list(range(epochs))
    assert "lenet" in read_json(str(run_dir / "metrics.json"))


def _kill_after_first_epoch(client, output_dir, timeout=120):
    """Kill the kernel as soon as a history row is written (a Colab disconnect mid-training)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [path for path in output_dir.glob("*/lenet/history.csv") if path.read_text().count("\n") > 1]
        if rows:
            break
        time.sleep(0.02)
    os.kill(client.km.provisioner.pid, signal.SIGKILL)
