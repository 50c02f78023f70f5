"""The notebook, executed top to bottom with the small-run switch on the tiny archive."""

import os

import papermill

from utils.runs import read_json

NOTEBOOK = os.path.join(os.path.dirname(os.path.dirname(__file__)), "image_classification_main.ipynb")


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
        parameters={"overrides": overrides},
        cwd=os.path.dirname(NOTEBOOK),
        kernel_name="python3",
        progress_bar=False,
    )
    (run_dir,) = output_dir.iterdir()
    metrics = read_json(str(run_dir / "metrics.json"))
    assert list(metrics) == ["custom_cnn", "lenet", "fast_cnn", "vgg16"]
    assert all(0 <= row["test_accuracy"] <= 1 for row in metrics.values())
    for name in metrics:
        for file in (
            "best.keras",
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
    text = executed.read_text()
    assert "Best model:" in text and "wins by" in text
    assert "transfer learning helps most on" in text and "Most robust to the corruptions" in text
