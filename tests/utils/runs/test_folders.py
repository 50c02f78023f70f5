import os

import pytest

from utils.config.resolve import resolve_args
from utils.errors import RunFolderError
from utils.runs.folders import (
    open_run,
    partial_path,
    read_history,
    read_json,
    save_atomically,
    write_history_row,
    write_json,
)


def test_new_run_saves_its_exact_args(tmp_path):
    args = resolve_args({"epochs": 3})
    run = open_run(str(tmp_path), args, args["run_name"])
    assert not run.resumed
    assert read_json(run.file("args.json")) == args


def test_unfinished_run_with_same_args_is_resumed(tmp_path):
    args = resolve_args({"epochs": 3})
    first = open_run(str(tmp_path), args, args["run_name"])
    assert open_run(str(tmp_path), {**args, "verbose": 2}) == type(first)(first.path, resumed=True)
    other = open_run(str(tmp_path), resolve_args({"epochs": 4}))
    assert other.path != first.path and not other.resumed


def test_finished_run_is_never_reused_or_overwritten(tmp_path):
    args = resolve_args({"epochs": 3})
    first = open_run(str(tmp_path), args, args["run_name"])
    write_json(first.file("metrics.json"), {})
    second = open_run(str(tmp_path), args, args["run_name"])
    assert second.path != first.path and not second.resumed
    assert os.path.isfile(first.file("metrics.json"))


def test_named_run_refuses_finished_or_different_runs(tmp_path):
    args = resolve_args({"run_name": "mine"})
    run = open_run(str(tmp_path), args, args["run_name"])
    with pytest.raises(RunFolderError, match=r"another run \(args differ in \['epochs'\]\)"):
        open_run(str(tmp_path), {**args, "epochs": 2}, "mine")
    write_json(run.file("metrics.json"), {})
    with pytest.raises(RunFolderError, match="holds a finished run"):
        open_run(str(tmp_path), args, args["run_name"])


def test_history_keeps_one_row_per_epoch(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,2.5\n1,2.0\n1,1.9\n2,1.5\n")
    assert read_history(str(path)) == {"epoch": [0, 1, 2], "loss": [2.5, 1.9, 1.5]}
    assert read_history(str(tmp_path / "missing.csv")) == {}


def test_unwritable_output_folder_is_named(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(RunFolderError, match=f"Cannot write the run folder {blocker}/.*output_dir"):
        open_run(str(blocker), resolve_args({"run_name": "r"}), "r")


def test_a_history_line_cut_by_an_interruption_is_not_read(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,2.5\n1,1.5\n2,0.7")  # a kill while an older version appended epoch 2
    assert read_history(str(path)) == {"epoch": [0, 1], "loss": [2.5, 1.5]}


def test_history_rewrite_keeps_one_row_per_epoch(tmp_path):
    path = str(tmp_path / "history.csv")
    write_history_row(path, 0, {"loss": 2.5, "val_loss": 2.0})
    write_history_row(path, 1, {"loss": 1.5, "val_loss": 1.8})
    write_history_row(path, 1, {"loss": 1.4, "val_loss": 1.7})  # epoch 1 ran again after a resume
    with open(path, encoding="utf-8") as handle:
        assert handle.read().splitlines() == ["epoch,loss,val_loss", "0,2.5,2.0", "1,1.4,1.7"]
    assert not os.path.exists(path + ".tmp")


def test_partial_files_keep_the_suffix_keras_checks():
    assert partial_path("run/m/phase_train.weights.h5") == "run/m/phase_train.partial.weights.h5"
    assert partial_path("best.keras") == "best.partial.keras"


def test_a_save_interrupted_midway_leaves_the_previous_file(tmp_path):
    path = tmp_path / "final.keras"
    path.write_text("previous model")

    def interrupted(file):
        with open(file, "w") as handle:
            handle.write("half of a")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_atomically(interrupted, str(path))
    assert path.read_text() == "previous model"
    save_atomically(lambda file: open(file, "w").write("new model"), str(path))
    assert path.read_text() == "new model"
    assert [p.name for p in tmp_path.iterdir()] == ["final.keras"]  # the partial file was renamed
