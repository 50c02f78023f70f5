"""train.py end to end on the tiny archive, as a user runs it."""

import json
import os
import subprocess
import sys

import pytest

from tests import ROOT
from utils.runs.folders import read_json

pytestmark = pytest.mark.slow  # runs train.py in subprocesses


def run_train(*arguments, cwd):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "train.py"), *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def test_train_script_runs_the_pipeline(tiny_archive, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"epochs": 5, "models": ["vgg16"], "verbose": 0}))
    result = run_train(
        "--config",
        str(config),
        "--set",
        f"data_path={tiny_archive}",
        "--set",
        "small_run=true",
        "--set",
        "models=custom_cnn,lenet",
        "--set",
        "run_name=cli",
        "--set",
        "precision=float32",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "cli"
    args = read_json(str(run_dir / "args.json"))
    assert args["models"] == ["custom_cnn", "lenet"] and args["epochs"] == 1 and args["verbose"] == 0
    metrics = read_json(str(run_dir / "metrics.json"))
    assert set(metrics) == {"custom_cnn", "lenet"}
    assert metrics["lenet"]["epochs"] == 1
    assert (run_dir / "comparison.md").read_text() in result.stdout
    assert (run_dir / "analysis.md").read_text() in result.stdout
    for name in ("custom_cnn", "lenet"):
        for file in ("analysis.json", "calibration.json", "confusion.png", "reliability.png", "gradcam.png"):
            assert (run_dir / name / file).is_file(), (name, file)


def test_train_script_reports_bad_args_clearly(tmp_path):
    result = run_train("--set", "epochs=0", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: args['epochs'] = 0 is not accepted: expected an integer >= 1." in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_evaluate_reloads_an_earlier_run(tiny_archive, tmp_path):
    common = ["--set", f"data_path={tiny_archive}", "--set", "small_run=true", "--set", "verbose=0"]
    trained = run_train(*common, "--set", "models=lenet", "--set", "run_name=first", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    run_dir = tmp_path / "runs" / "first"
    before = read_json(str(run_dir / "metrics.json"))["lenet"]
    (run_dir / "metrics.json").unlink()
    result = run_train("--evaluate", str(run_dir), "--set", f"data_path={tiny_archive}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    after = read_json(str(run_dir / "metrics.json"))["lenet"]
    assert after["test_accuracy"] == before["test_accuracy"]
    assert after["test_loss"] == pytest.approx(before["test_loss"], rel=1e-5)
    assert (run_dir / "lenet" / "analysis.json").is_file() and (run_dir / "robustness.png").is_file()
    report = run_train("--report", str(tmp_path / "runs"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "| lenet | 42 | first |" in report.stdout and (tmp_path / "runs" / "report.png").is_file()


def test_report_of_a_folder_without_runs(tmp_path):
    result = run_train("--report", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "holds no finished run" in result.stderr


def test_evaluate_refuses_a_folder_without_run(tmp_path):
    result = run_train("--evaluate", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "is not a run folder" in result.stderr


def test_missing_weights_stop_before_any_training(tiny_archive, tmp_path):
    result = run_train(
        "--set",
        f"data_path={tiny_archive}",
        "--set",
        "small_run=true",
        "--set",
        "models=lenet,vgg16",
        "--set",
        "weights=/nowhere/vgg16.h5",
        "--set",
        "run_name=early",
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "'/nowhere/vgg16.h5' does not exist" in result.stderr
    assert not (tmp_path / "runs" / "early" / "lenet").exists()


def test_defaults_run_to_the_end_offline(tiny_archive, tmp_path, monkeypatch, capsys):
    """The README's main command without internet: vgg16's weights cannot be had, so the
    offline backbone takes its place, says why, and trains with its own recipe (its registry entry)."""
    import train
    from models.pretrained import backbones as pretrained

    def unreachable(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(pretrained.socket, "create_connection", unreachable)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.chdir(tmp_path)
    arguments = ["--set", f"data_path={tiny_archive}", "--set", "small_run=true", "--set", "run_name=offline"]
    assert train.main([*arguments, "--set", "verbose=0"]) == 0
    metrics = read_json(str(tmp_path / "runs" / "offline" / "metrics.json"))
    assert list(metrics) == ["fast_cnn", "efficientnet_lite0"]
    assert (tmp_path / "runs" / "offline" / "curves_overlay.png").is_file()  # as the notebook's run
    out = capsys.readouterr().out
    assert "vgg16 replaced by efficientnet_lite0: its ImageNet weights are not in" in out
    assert "its own args {'image_size': 160, 'feature_depths': 3, 'epochs': 1, 'fine_tune_epochs': 0" in out
    assert "fast_cnn: 1,973,944 parameters" in out and "'batch_size': 2000, 'optimizer': 'muon_sgd'" in out


def test_a_write_that_fails_mid_run_names_the_file(tiny_archive, tmp_path, monkeypatch, capsys):
    """A full disk at the end of a run: a one-line error naming the file, no traceback."""
    import errno

    import train
    from utils.evaluation import test_set as evaluation

    def disk_full(path, value):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(evaluation, "write_json", disk_full)
    monkeypatch.chdir(tmp_path)
    arguments = ["--set", f"data_path={tiny_archive}", "--set", "small_run=true", "--set", "models=lenet"]
    assert (
        train.main([*arguments, "--set", "run_name=full", "--set", "verbose=0", "--set", "analysis=false"])
        == 2
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == ["error: could not write runs/full/metrics.json: No space left on device"]
    assert (tmp_path / "runs" / "full" / "lenet" / "best.keras").is_file()  # what was trained is kept
