"""benchmarks/reference/: the PyTorch reference's data step, the EfficientNet-Lite cross-check, our
recipe against the reference."""

import json

import numpy as np
import pytest

from benchmarks.accuracy import time_to_accuracy
from benchmarks.reference import crosscheck_lite_torch, reference_airbench_torch

pytestmark = pytest.mark.slow  # runs the benchmark scripts in their tiny mode


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_crosscheck_keras_step_saves_inputs_and_pooled_features(variant, tiny_archive, tmp_path):
    out = tmp_path / f"{variant}.npz"
    crosscheck_lite_torch.main(
        ["keras", "--variant", variant, "--data", tiny_archive, "--images", "3", "--image-size", "64"]
        + ["--out", str(out)]
    )
    saved = np.load(out)
    assert str(saved["variant"]) == variant
    assert saved["inputs"].shape == (3, 64, 64, 3) and saved["features"].shape == (3, 1280)
    assert -1.0 <= saved["inputs"].min() and saved["inputs"].max() <= 1.0  # Lite0's (x - 127) / 128
    assert np.isfinite(saved["features"]).all() and saved["features"].std() > 0


def test_reference_data_step_saves_the_archive_as_arrays(tiny_archive, tmp_path):
    out = tmp_path / "cifar10.npz"
    reference_airbench_torch.main(["data", "--data", tiny_archive, "--out", str(out)])
    saved = np.load(out)
    assert saved["train_images"].shape == (150, 32, 32, 3) and saved["train_images"].dtype == np.uint8
    assert saved["test_images"].shape == (40, 32, 32, 3) and saved["test_labels"].shape == (40,)
    assert set(np.unique(saved["train_labels"])) == set(range(10))


def _versus_run(seconds_and_accuracies, tta):
    epochs = [
        {"seconds": s, "test_accuracy": a, "test_accuracy_tta": a + 0.01} for s, a in seconds_and_accuracies
    ]
    return {
        "test_accuracy": epochs[-1]["test_accuracy"],
        "test_accuracy_tta": tta,
        "train_seconds": sum(s for s, _ in seconds_and_accuracies),
        "epochs": epochs,
    }


def test_versus_reference_holds_our_mean_curve_to_the_reference_final_accuracies():
    from benchmarks.reference import versus_reference

    reference = [_versus_run([(100, 0.7), (100, 0.90)], 0.91), _versus_run([(100, 0.7), (100, 0.88)], 0.90)]
    ours = [
        _versus_run([(50, 0.80), (50, 0.89), (50, 0.92)], 0.93),
        _versus_run([(60, 0.87), (60, 0.9), (60, 0.9)], 0.91),
    ]
    result = versus_reference.compare(reference, ours)
    assert result["reference_final_accuracy"] == 0.89  # mean of 0.90 and 0.88
    assert result["reference_final_tta_accuracy"] == 0.905
    # our mean curve: 0.835 at 55 s, 0.895 at 110 s, 0.91 at 165 s (TTA: 0.01 more each)
    assert result["ours_seconds_to_reference_accuracy"] == 110.0
    assert result["ratio_time_to_reference_accuracy"] == 0.55  # of the reference's 200 s
    assert result["ours_seconds_to_reference_tta_accuracy"] == 110.0  # 0.905 reached there
    assert result["ratio_train_seconds"] == 0.825  # (150 + 180) / 2 over 200
    assert result["tta_accuracy_difference"] == 0.015


def test_versus_reference_has_no_ratio_when_we_never_reach_the_reference():
    from benchmarks.reference import versus_reference

    result = versus_reference.compare([_versus_run([(100, 0.9)], 0.91)], [_versus_run([(10, 0.5)], 0.5)])
    assert result["ours_seconds_to_reference_accuracy"] is None
    assert result["ratio_time_to_reference_accuracy"] is None
    assert result["ratio_time_to_reference_tta_accuracy"] is None
    assert result["ratio_train_seconds"] == 0.1


def test_versus_reference_reads_records_without_per_epoch_tta():
    from benchmarks.reference import versus_reference

    ours = _versus_run([(10, 0.95)], 0.95)
    del ours["epochs"][0]["test_accuracy_tta"]
    result = versus_reference.compare([_versus_run([(100, 0.9)], 0.91)], [ours])
    assert result["ours_seconds_to_reference_accuracy"] == 10.0
    assert result["ours_seconds_to_reference_tta_accuracy"] is None


def test_versus_reference_shortens_both_sides_alike_and_passes_overrides():
    from benchmarks.reference import versus_reference

    options = versus_reference.parse_command_line(
        [
            "--data",
            "d",
            "--torch-python",
            "py",
            "--out",
            "o",
            "--reference-epochs",
            "2",
            "--set",
            "seed=3",
            "--tiny",
        ]
    )
    reference = versus_reference.reference_command(options, "in.npz", 1, "ref.json")
    ours = versus_reference.ours_command(options, 1, "ours.json")
    assert reference[0] == "py" and reference[reference.index("--epochs") + 1] == "2.0"
    assert ours[ours.index("--model") + 1] == "fast_cnn" and ours[ours.index("--preset") + 1] == "fast"
    assert ["--set", "epochs=2"] == ours[ours.index("epochs=2") - 1 : ours.index("epochs=2") + 1]
    assert "seed=3" in ours and ours[-1] == "--tiny"
    full = versus_reference.parse_command_line(_minimal_versus_options())
    assert not any(part.startswith("epochs=") for part in versus_reference.ours_command(full, 0, "x"))
    muon = versus_reference.parse_command_line([*_minimal_versus_options(), "--preset", "fast_muon"])
    muon_command = versus_reference.ours_command(muon, 0, "x")
    assert muon_command[muon_command.index("--preset") + 1] == "fast_muon"
    with pytest.raises(SystemExit):
        versus_reference.parse_command_line([*_minimal_versus_options(), "--preset", "original"])


def _minimal_versus_options():
    return ["--data", "d", "--torch-python", "py", "--out", "o"]


def test_tiny_versus_reference_runs_both_sides_alternating(tiny_archive, tmp_path, capsys):
    """Needs a Python with torch: TORCH_PYTHON, or this one if it has torch (CI has neither: skipped)."""
    import importlib.util
    import os
    import sys

    from benchmarks.reference import versus_reference

    torch_python = os.environ.get("TORCH_PYTHON") or (
        sys.executable if importlib.util.find_spec("torch") else None
    )
    if torch_python is None:
        pytest.skip("no Python with torch (set TORCH_PYTHON)")
    out = tmp_path / "versus.json"
    common = ["--data", tiny_archive, "--torch-python", torch_python, "--out", str(out), "--tiny"]
    common += [
        "--reference-precision",
        "float32",
        "--reference-epochs",
        "1",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    common += ["--set", "precision=float32", "--set", "verbose=0"]
    versus_reference.main([*common, "--seeds", "0"])
    first_sitting = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")]
    versus_reference.main([*common, "--seeds", "0", "1", "--resume"])  # seed 0 kept, seed 1 run
    record = json.loads(out.read_text())
    assert (
        [run["seed"] for run in record["reference_runs"]]
        == [0, 1]
        == [run["seed"] for run in record["our_runs"]]
    )
    assert all(len(run["epochs"]) == 1 for run in record["reference_runs"] + record["our_runs"])
    assert 0 <= record["ours"]["test_accuracy_tta"] <= 1 and record["reference"]["train_seconds"] > 0
    commands = first_sitting + [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")
    ]
    assert ["reference_airbench" in command for command in commands] == [True, False, False, True]


def _finished_seed_record(tmp_path, **changes):
    """A versus_reference record holding seed 0, as a run with `options` below leaves it."""
    from benchmarks.common import machine_description

    record = {
        "seeds": [0],
        "made_from_records": None,
        "reference_precision": "float32",
        "reference_epochs": 8.0,
        "set": ["verbose=0"],
        "machine": machine_description(),
        "reference_runs": [{"seed": 0, "side": "reference"}],
        "our_runs": [{"seed": 0, "side": "ours"}],
        **changes,
    }
    out = tmp_path / "versus.json"
    out.write_text(json.dumps(record))
    common = ["--data", "d", "--torch-python", "py", "--out", str(out), "--reference-precision", "float32"]
    return common + ["--reference-epochs", "8", "--set", "verbose=0", "--seeds", "0", "1"]


@pytest.mark.parametrize(
    "changes, refused",
    [
        ({}, None),
        ({"reference_precision": "bfloat16"}, "reference precision: 'bfloat16' there, 'float32' here"),
        ({"seeds": [1]}, r"seeds: \[1\] there, \[0\] here"),
        ({"made_from_records": [["r.json", "o.json"]]}, "made from records"),
        ({"set": []}, "--set"),
        ({"ours_preset": "fast_muon"}, "--preset: 'fast_muon' there, 'fast' here"),
        ({"machine": {"cores": 64}}, "another machine"),
    ],
)
def test_versus_reference_resume_keeps_finished_seeds_of_the_same_run_only(tmp_path, changes, refused):
    from benchmarks.reference import versus_reference

    options = versus_reference.parse_command_line([*_finished_seed_record(tmp_path, **changes), "--resume"])
    if refused is None:
        assert versus_reference.finished_runs(options) == (
            [{"seed": 0, "side": "reference"}],
            [{"seed": 0, "side": "ours"}],
        )
    else:
        with pytest.raises(SystemExit, match=refused):
            versus_reference.finished_runs(options)
    fresh = versus_reference.parse_command_line(_finished_seed_record(tmp_path, **changes))
    assert versus_reference.finished_runs(fresh) == ([], [])  # without --resume the record is started anew


def test_versus_reference_from_records_compares_runs_made_apart(tiny_archive, tmp_path, capsys):
    from benchmarks.reference import versus_reference

    ours = tmp_path / "ours.json"
    time_to_accuracy.main(
        ["--data", tiny_archive, "--model", "fast_cnn", "--preset", "fast", "--out", str(ours), "--tiny"]
        + ["--runs-dir", str(tmp_path / "runs"), "--set", "precision=float32", "--set", "verbose=0"]
    )
    reference = tmp_path / "reference.json"  # the reference script's record, as its train step writes it
    epochs = [{"epoch": 0, "seconds": 40.0, "train_loss": 2.0, "test_accuracy": 0.0}]
    fields = {
        "seeds": [0],
        "test_accuracy": 0.0,
        "test_accuracy_tta": 0.0,
        "test_accuracy_tta_translate": 0.0,
    }
    recipe = {**reference_airbench_torch.RECIPE, "epochs": 1}
    reference.write_text(
        json.dumps(
            {**fields, "train_seconds": 40.0, "precision": "float32", "recipe": recipe, "epochs": epochs}
        )
    )
    out = tmp_path / "versus.json"
    versus_reference.main(["--from-records", str(reference), str(ours), "--out", str(out)])
    record = json.loads(out.read_text())
    assert record["made_from_records"] == [[str(reference), str(ours)]]
    assert record["reference_precision"] == "float32" and record["reference_epochs"] == 1
    assert record["ours_preset"] == "fast"
    assert record["reference"]["train_seconds"] == 40.0
    our_run = record["our_runs"][0]
    assert our_run["train_seconds"] == round(sum(e["seconds"] for e in our_run["epochs"]), 1)
    # the reference's final accuracy (0 here) is reached by our first epoch
    assert record["ours_seconds_to_reference_accuracy"] == round(our_run["epochs"][0]["seconds"], 1)
    assert record["ratio_train_seconds"] == round(our_run["train_seconds"] / 40.0, 3)
    with pytest.raises(SystemExit):
        versus_reference.parse_command_line(["--out", str(out)])  # neither data nor records
