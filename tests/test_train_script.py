"""train.py end to end on the tiny archive, as a user runs it."""

import json
import os
import subprocess
import sys

from utils.runs import read_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def test_train_script_reports_bad_args_clearly(tmp_path):
    result = run_train("--set", "epochs=0", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: args['epochs'] = 0 is not accepted: expected an integer >= 1." in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
