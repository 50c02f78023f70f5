"""tune.py and utils.tuning.search: a real KerasTuner search through the project's pipeline on tiny data,
its outputs, resuming, and the distributed mode with a chief and two workers on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys
import time

import keras_tuner
import pytest

import train
import tune
from benchmarks.common import free_ports
from tests import ROOT
from utils.config.overrides import overrides_from
from utils.config.resolve import args_for_model, resolve_args
from utils.errors import ConfigError, TuningError
from utils.runs.folders import read_history
from utils.steps import load_data
from utils.tuning.search import PipelineTuner, SearchOptions, make_oracle, search

pytestmark = pytest.mark.slow  # runs searches of several trials

SPACE = {
    "learning_rate": {"min": 0.01, "max": 0.1, "sampling": "log"},
    "model_options.custom_cnn.width": {"values": [4, 8]},
}
RANDOM_TWO = SearchOptions(tuner="random", max_trials=2)


@pytest.fixture
def overrides(tiny_args):
    return {**tiny_args, "models": ["custom_cnn"], "epochs": 2, "analysis": False}


def test_search_writes_trials_table_figure_and_best_args(overrides, tmp_path, capsys):
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps(SPACE))
    command = ["--space", str(space_file), "--tuner", "random", "--max-trials", "2"]
    command += [f"--set={key}={json.dumps(value)}" for key, value in overrides.items()]
    assert tune.main(command) == 0
    folder = tmp_path / "runs" / "tune-custom_cnn"
    for name in ("trials.csv", "trials.md", "trials.png", "best_args.json"):
        assert (folder / name).is_file(), name
    rows = (folder / "trials.csv").read_text().splitlines()
    assert (
        rows[0]
        == "trial,status,learning_rate,model_options.custom_cnn.width,val_accuracy,epochs,train_seconds"
    )
    assert len(rows) == 3 and all(",COMPLETED," in row and ",2.0," in row for row in rows[1:])
    assert (folder / "trials.md").read_text() in capsys.readouterr().out
    # each trial trained 2 epochs with the project's pipeline in its own run folder
    for trial in ("trial_0", "trial_1"):
        history = read_history(str(folder / "trials" / trial / "custom_cnn" / "history.csv"))
        assert history["epoch"] == [0, 1] and "val_accuracy" in history
    best = json.loads((folder / "best_args.json").read_text())
    assert best["model_options"]["custom_cnn"]["width"] in (4, 8) and 0.01 <= best["learning_rate"] <= 0.1
    config_overrides = overrides_from(train.parse_command_line(["--config", str(folder / "best_args.json")]))
    assert resolve_args(config_overrides)["learning_rate"] == best["learning_rate"]


def test_an_interrupted_search_resumes_with_the_unfinished_trial(overrides, tmp_path, monkeypatch):
    folder = str(tmp_path / "search")
    run_trial = PipelineTuner.run_trial
    calls = []

    def interrupted_second_trial(self, trial, *args, **kwargs):
        calls.append(trial.trial_id)
        if len(calls) == 2:
            raise KeyboardInterrupt  # what Ctrl-C or a kill does mid-trial
        return run_trial(self, trial, *args, **kwargs)

    monkeypatch.setattr(PipelineTuner, "run_trial", interrupted_second_trial)
    with pytest.raises(KeyboardInterrupt):
        search(overrides, SPACE, RANDOM_TWO, folder)
    tuner = search(overrides, SPACE, RANDOM_TWO, folder)
    assert calls == ["0", "1", "1"]  # trial 0 is not trained again
    statuses = [str(trial.status) for trial in tuner.oracle.trials.values()]
    assert statuses == ["COMPLETED", "COMPLETED"]


def test_hyperband_gives_each_trial_its_epoch_budget(overrides, tmp_path):
    oracle = make_oracle(SearchOptions(), SPACE, max_epochs=9, seed=0)
    tuner = PipelineTuner(oracle, overrides, str(tmp_path))
    hp = oracle.get_space()
    hp.values["tuner/epochs"] = 3
    args = tuner.trial_args(keras_tuner.engine.trial.Trial(hp, trial_id="7"))
    assert args["epochs"] == 3 and args["run_name"] == "trial_7" and args["analysis"] is False
    assert args["output_dir"] == os.path.join(str(tmp_path), "trials")
    with pytest.raises(ConfigError, match="factor 3"):
        make_oracle(SearchOptions(), SPACE, max_epochs=2, seed=0)


def test_a_trials_values_hold_over_the_searched_models_own_args(overrides, tmp_path):
    oracle = make_oracle(SearchOptions(), SPACE, max_epochs=9, seed=0)
    model_args = {"custom_cnn": {"learning_rate": 0.5, "epochs": 7, "warmup_epochs": 0.5}}
    tuner = PipelineTuner(oracle, {**overrides, "model_args": model_args}, str(tmp_path))
    hp = oracle.get_space()
    hp.values.update({"learning_rate": 0.02, "tuner/epochs": 3})
    args = tuner.trial_args(keras_tuner.engine.trial.Trial(hp, trial_id="1"))
    assert args["model_args"] == {"custom_cnn": {"warmup_epochs": 0.5}}  # the rest of its own args stay
    trial_model_args = args_for_model(args, "custom_cnn")
    assert trial_model_args["learning_rate"] == 0.02 and trial_model_args["epochs"] == 3


def test_trials_never_see_the_test_set(overrides):
    data = load_data(resolve_args(overrides), with_test=False)
    assert len(data.test) == 0 and len(data.train) == 120 and len(data.validation) == 30
    with pytest.raises(ConfigError, match="no validation split"):
        load_data(resolve_args({**overrides, "val_fraction": 0}), with_test=False)


def test_tune_refuses_several_models_and_partial_distribution_settings(overrides, monkeypatch, capsys):
    assert tune.main(["--set", "models=custom_cnn,lenet"]) == 2
    assert "one model at a time" in capsys.readouterr().err
    assert tune.main(["--max-trials", "0"]) == 2
    assert "max_trials = 0 is not accepted: expected at least 1" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="factor = 1"):
        SearchOptions(factor=1)
    with pytest.raises(ConfigError, match="no validation split"):
        search({**overrides, "val_fraction": 0}, SPACE, RANDOM_TWO, "unused")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    with pytest.raises(TuningError, match="KERASTUNER_ORACLE_IP"):
        search(overrides, SPACE, RANDOM_TWO, "unused")


def start_tuner(tuner_id, port, command, cwd):
    environment = {
        **os.environ,
        "PYTHONPATH": ROOT,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERASTUNER_TUNER_ID": tuner_id,
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(port),
    }
    return subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tune.py"), *command],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(processes, seconds):
    """Outputs of every process, each stopped if still running after `seconds` in all."""
    deadline, outputs = time.monotonic() + seconds, []
    for process in processes:
        try:
            outputs.append(process.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
        except subprocess.TimeoutExpired:
            process.kill()
            outputs.append(process.communicate()[0] + "\n[stopped by the test]")
    return outputs


def wait_for_port(port, process, seconds):
    """Wait until something listens on `port` (the chief's oracle server), at most `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"the chief did not listen on port {port} within {seconds} s")


def tune_command(overrides, tmp_path, connect_timeout):
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps(SPACE))
    command = ["--space", str(space_file), "--tuner", "random", "--max-trials", "3"]
    command += ["--connect-timeout", str(connect_timeout)]
    return command + [f"--set={key}={json.dumps(value)}" for key, value in overrides.items()]


def test_distributed_search_with_a_chief_and_two_workers(overrides, tmp_path):
    port, command = free_ports(1)[0], tune_command(overrides, tmp_path, connect_timeout=60)
    chief = start_tuner("chief", port, command, tmp_path)
    try:
        wait_for_port(port, chief, seconds=120)
    except AssertionError as error:
        chief.kill()
        raise AssertionError(f"{error}:\n{chief.communicate()[0][-3000:]}") from None
    workers = [start_tuner(f"tuner{index}", port, command, tmp_path) for index in range(2)]
    outputs = finish([*workers, chief], seconds=240)
    assert [p.returncode for p in (*workers, chief)] == [0, 0, 0], "\n".join(o[-2000:] for o in outputs)
    folder = tmp_path / "runs" / "tune-custom_cnn"
    rows = (folder / "trials.csv").read_text().splitlines()[1:]
    assert len(rows) == 3 and all(",COMPLETED," in row for row in rows)
    assert (folder / "best_args.json").is_file()
    assert sorted(os.listdir(folder / "trials")) == ["trial_0", "trial_1", "trial_2"]
    assert (folder / "trials.md").read_text() in outputs[2]  # the chief writes and prints the table


def test_a_worker_without_its_chief_fails_in_bounded_time(overrides, tmp_path):
    start = time.monotonic()
    worker = start_tuner(
        "tuner0", free_ports(1)[0], tune_command(overrides, tmp_path, connect_timeout=5), tmp_path
    )
    output = finish([worker], seconds=120)[0]
    assert worker.returncode == 2 and time.monotonic() - start < 120
    assert "could not reach the chief oracle at 127.0.0.1" in output and "within 5 s" in output


def test_a_user_mistake_inside_a_trial_stops_the_search_with_its_message(overrides, tmp_path, monkeypatch):
    def refuse(name, args):
        raise ConfigError("args['image_size'] = 40 is below what inceptionv3 takes")

    monkeypatch.setattr("utils.steps.build_for_run", refuse)
    with pytest.raises(TuningError, match="The search stopped: args\\['image_size'\\] = 40"):
        search(overrides, SPACE, RANDOM_TWO, str(tmp_path / "search"))


def test_offline_a_backbone_is_searched_as_its_offline_replacement(tmp_path, monkeypatch, capsys):
    from models.pretrained import backbones as pretrained

    def unreachable(*args, **kwargs):
        raise OSError("network is unreachable")

    searched = {}

    def stop_before_training(overrides, space, options, search_dir):
        searched.update(models=overrides["models"], space=space)
        raise TuningError("stopped by the test")

    monkeypatch.setattr(pretrained.socket, "create_connection", unreachable)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr("utils.tuning.search.search", stop_before_training)  # tune.py imports it late
    assert tune.main(["--set", "models=vgg16"]) == 2
    assert searched["models"] == ["efficientnet_lite0"] and "fine_tune_lr_factor" in searched["space"]
    assert "vgg16 replaced by efficientnet_lite0" in capsys.readouterr().out
