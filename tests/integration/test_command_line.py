"""The command lines talk: full help without TensorFlow, the args table, progress lines while a run
works, and a start that fails leaves no run folder."""

import os
import re
import subprocess
import sys

import pytest

from tests import ROOT
from utils.config.settings import SETTINGS


def run_script(script, *arguments, cwd, env=None):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, script), *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT, **(env or {})},
    )


def imports_after(code):
    """The modules imported by running `code` in a fresh interpreter (its --help exits it)."""
    probe = f"import sys\ntry:\n    {code}\nexcept SystemExit:\n    pass\nprint(sorted(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    return result.stdout.strip().splitlines()[-1], result


@pytest.mark.parametrize(
    "script, words",
    [
        ("train", ["--list-args", "preset=full", "Exit status", "resumes it where it stopped"]),
        ("tune", ["Distributed search", "--hyperband-iterations", "whole bracket schedule", "Exit status"]),
        ("predict", ["--model", "calibrated by the temperature", "exit status 1"]),
    ],
)
def test_help_is_the_whole_docstring_without_tensorflow(script, words):
    modules, result = imports_after(f"import {script}; {script}.parse_command_line(['--help'])")
    assert "'tensorflow'" not in modules and "'keras'" not in modules
    text = " ".join(result.stdout.split())  # argparse wraps the option help
    for word in words:
        assert word in text, word
    assert result.stderr == ""  # no log lines


def test_every_option_has_help():
    import train
    import tune

    for module in (train, tune):
        lines = subprocess.run(
            [sys.executable, os.path.join(ROOT, f"{module.__name__}.py"), "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        options = lines[lines.index("options:") :]
        for option in re.findall(r"^  (--[a-z-]+)", options, flags=re.M):
            described = re.search(rf"^  {option}[^\n]*\n?(\s{{20,}}\S[^\n]*)?", options, flags=re.M)
            assert described and len(described.group(0).split()) > 2, (module.__name__, option)


def test_list_args_prints_every_key_by_stage(tmp_path):
    result = run_script("train.py", "--list-args", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    for key in SETTINGS:
        assert re.search(rf"^  {key} = ", result.stdout, flags=re.M), key
    assert "[optimizer]" in result.stdout and not (tmp_path / "runs").exists()


@pytest.mark.slow  # imports TensorFlow in a subprocess
def test_a_start_without_data_leaves_no_run_folder(tmp_path):
    result = run_script("train.py", "--set", "data_path=/nowhere/cifar-10-python.tar.gz", cwd=tmp_path)
    assert result.returncode == 2 and "/nowhere/cifar-10-python.tar.gz" in result.stderr
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "runs").iterdir()) == []  # the run folder it made is gone


@pytest.mark.slow  # trains two models on the tiny archive
def test_a_run_says_what_it_does_and_when_it_should_end(tiny_archive, tmp_path):
    result = run_script(
        "train.py",
        *("--set", f"data_path={tiny_archive}", "--set", "small_run=true", "--set", "verbose=0"),
        *("--set", "models=lenet,efficientnet_lite0", "--set", "run_name=talk"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "--- lenet (model 1 of 2): 1 epoch planned ---" in out
    assert "--- efficientnet_lite0 (model 2 of 2): 1 epoch planned ---" in out
    clock = r"\d\d:\d\d"
    # Lite0's recipe is shortened by small_run, so its time and the run's end are not estimated
    assert re.search(
        rf"lenet \(model 1 of 2\): epoch 1 of 1 took \d+ s; the model should end about {clock}, "
        r"then the later models \(no estimate\)",
        out,
    )
    assert re.search(r"efficientnet_lite0: backbone features of [\d,]+ images at 160 px: done in \d+ s", out)
    for name in ("lenet", "efficientnet_lite0"):
        assert re.search(rf"Testing {name} on 40 images, plain and flipped: done in \d+ s", out)
        assert re.search(rf"Analysing {name}: done in \d+ s \(predictions \d+ s, per_class", out)
    assert "UserWarning" not in result.stderr and "retracing" not in result.stderr
