"""The benchmark scripts in their tiny mode, so they cannot rot."""

import json

import numpy as np
import pytest

from benchmarks.accuracy import linear_probe, time_to_accuracy
from benchmarks.reference import crosscheck_lite0_torch, reference_airbench_torch
from benchmarks.speed import analysis_time, step_versus_revision
from utils.config.resolve import resolve_args
from utils.data import cifar10 as cifar

pytestmark = pytest.mark.slow  # runs the benchmark scripts in their tiny mode

REQUIRED_KEYS = {
    "model",
    "preset",
    "seeds",
    "test_accuracy",
    "test_accuracy_tta",
    "train_seconds",
    "time_to_accuracy",
    "machine",
}


def test_tiny_time_to_accuracy_writes_a_complete_record(tiny_archive, tmp_path, capsys):
    out = tmp_path / "record.json"
    time_to_accuracy.main(
        [
            "--data",
            tiny_archive,
            "--model",
            "fast_cnn",
            "--preset",
            "fast",
            "--seeds",
            "0",
            "1",
            "--out",
            str(out),
            "--tiny",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--set",
            "precision=float32",
            "--set",
            "verbose=0",
        ]
    )
    record = json.loads(out.read_text())
    assert REQUIRED_KEYS <= set(record)
    assert record["model"] == "fast_cnn" and record["preset"] == "fast" and record["seeds"] == [0, 1]
    assert 0 <= record["test_accuracy"] <= 1 and 0 <= record["test_accuracy_tta"] <= 1
    assert set(record["time_to_accuracy"]) == {"0.80", "0.90", "0.93", "0.94"}
    assert record["machine"]["cores"] >= 1 and record["machine"]["keras"]
    assert record["args"]["preset"] == "fast" and record["args"]["seed"] == [0, 1]
    for run in record["runs"]:
        assert len(run["epochs"]) == 1
        epoch = run["epochs"][0]
        assert {"seconds", "train_loss", "val_accuracy", "test_accuracy"} <= set(epoch)
        assert 0 <= epoch["test_accuracy_tta"] <= 1
        assert run["train_seconds"] >= run["data_seconds"] > 0
        assert run["images_per_second_train"] > 0 and run["peak_rss_mb"] > 0
    mean = (record["runs"][0]["test_accuracy"] + record["runs"][1]["test_accuracy"]) / 2
    assert record["test_accuracy"] == pytest.approx(mean, abs=1e-4)
    assert "fast_cnn (fast), seeds [0, 1]" in capsys.readouterr().out
    assert record["phase"] == "scratch" and record["image_size"] == 32 and record["feature_seconds"] is None


def test_tiny_frozen_backbone_record_has_phase_image_size_and_feature_time(tiny_archive, tmp_path):
    out = tmp_path / "frozen.json"
    overrides = ["augment_flip=false", "augment_translate=0", "fine_tune_epochs=0", "image_size=64"]
    overrides += [f"feature_cache_dir={tmp_path / 'cache'}", "precision=float32", "verbose=0"]
    time_to_accuracy.main(
        ["--data", tiny_archive, "--model", "efficientnet_lite0", "--out", str(out), "--tiny"]
        + ["--runs-dir", str(tmp_path / "runs")]
        + [part for override in overrides for part in ("--set", override)]
    )
    record = json.loads(out.read_text())
    assert REQUIRED_KEYS <= set(record)
    assert record["phase"] == "frozen" and record["image_size"] == 64
    assert 0 < record["feature_seconds"] <= record["train_seconds"]
    assert not (tmp_path / "cache").exists()  # a timed run extracts its features afresh, in its own cache


def test_time_to_accuracy_counts_data_preparation_and_missing_thresholds():
    epochs = [{"seconds": 10, "test_accuracy": 0.85}, {"seconds": 10, "test_accuracy": 0.935}]
    reached = time_to_accuracy.time_to_accuracy(epochs, start_seconds=5)
    assert reached == {"0.80": 15, "0.90": 25, "0.93": 25, "0.94": None}
    assert time_to_accuracy.mean_or_none([1.0, None]) is None


def test_accuracy_within_budget_takes_the_last_epoch_finished_in_time():
    epochs = [{"seconds": 200, "test_accuracy": 0.5}, {"seconds": 200, "test_accuracy": 0.7}]
    within = time_to_accuracy.accuracy_within(epochs, start_seconds=50)
    assert within == {"300": 0.5, "600": 0.7, "1800": 0.7}
    assert time_to_accuracy.accuracy_within(epochs, start_seconds=400)["300"] is None


def test_time_limit_stops_after_the_epoch_that_passes_it(tiny_archive, tmp_path):
    out = tmp_path / "record.json"
    common = ["--data", tiny_archive, "--model", "lenet", "--out", str(out), "--tiny"]
    settings = ["--set", "small_run=false", "--set", "epochs=3", "--set", "verbose=0"]
    time_to_accuracy.main([*common, "--runs-dir", str(tmp_path / "runs"), "--time-limit", "0.001", *settings])
    record = json.loads(out.read_text())
    assert len(record["runs"][0]["epochs"]) == 1
    assert set(record["accuracy_within_seconds"]) == {"300", "600", "1800"}


def test_compare_gives_speedups_and_lower_bounds():
    from benchmarks.accuracy import compare

    def record(model, seconds_to_80, seconds_to_90, train_seconds):
        return {
            "model": model,
            "preset": None,
            "time_to_accuracy": {"0.80": seconds_to_80, "0.90": seconds_to_90, "0.94": None},
            "accuracy_within_seconds": {"300": 0.9, "600": 0.95},
            "test_accuracy": 0.95,
            "train_seconds": train_seconds,
        }

    result = compare.compare(record("fast", 100, 200, 600), record("slow", 1000, None, 3000))
    assert result["speedup_to_accuracy"]["0.80"] == {"ratio": 10.0, "lower_bound": False}
    assert result["speedup_to_accuracy"]["0.90"] == {"ratio": 15.0, "lower_bound": True}
    assert result["speedup_to_accuracy"]["0.94"] is None
    assert result["accuracy_within_seconds"]["300"] == {"ours": 0.9, "baseline": 0.9}


def test_tiny_throughput_writes_a_record(tiny_archive, tmp_path):
    from benchmarks.speed import throughput

    out = tmp_path / "throughput.json"
    throughput.main(
        [
            "--data",
            tiny_archive,
            "--model",
            "lenet",
            "--steps",
            "2",
            "--out",
            str(out),
            "--tiny",
            "--no-xla",
            "--set",
            "batch_size=16",
        ]
    )
    record = json.loads(out.read_text())
    assert record["model"] == "lenet" and record["batch_size"] == 16
    assert {row["precision"] for row in record["results"]} >= {"float32"}
    for row in record["results"]:
        assert row["train_images_per_second_compute_only"] > 0 and row["inference_images_per_second"] > 0
        assert row["pipeline_overhead"] == pytest.approx(
            1 - row["train_images_per_second_pipeline"] / row["train_images_per_second_compute_only"],
            abs=1e-3,
        )
    assert record["fastest"]["precision"] in {row["precision"] for row in record["results"]}
    assert record["peak_rss_mb"] > 0


def test_throughput_keeps_the_fastest_timed_call_after_the_warm_up(monkeypatch):
    """A timed call that stalls (a retrace, say) must not set the rate; the warm-up is never timed."""
    import types

    from benchmarks.speed import throughput

    clock, durations = [0.0], iter([9.0, 4.0, 2.0, 3.0])  # warm-up, then the timed calls

    def fit():
        clock[0] += next(durations)

    monkeypatch.setattr(throughput, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    assert throughput.images_per_second(fit, 100, repeats=3) == 50.0
    assert next(durations, None) is None  # one warm-up and three timed calls


def test_training_throughput_counts_the_steps_not_the_fit_around_them():
    """Seconds spent in `fit` outside its steps (here a slow on_train_end) are not training time."""
    import time

    import keras
    import numpy as np
    import tensorflow as tf

    from benchmarks.speed import throughput

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    data = tf.data.Dataset.from_tensors((np.ones((8, 4), "float32"), np.ones((8, 2), "float32"))).repeat()
    slow_end = keras.callbacks.LambdaCallback(on_train_end=lambda logs: time.sleep(0.5))
    rate = throughput.training_images_per_second(model, data, 2, 8, callbacks=[slow_end], repeats=1)
    assert rate > 10 * (2 * 8 / 0.5)  # timing the whole fit would give under 32 images/s


def test_tiny_throughput_of_fine_tuning(tiny_archive, tmp_path):
    from benchmarks.speed import throughput

    out = tmp_path / "throughput.json"
    arguments = ["--data", tiny_archive, "--model", "efficientnet_lite0", "--steps", "1", "--out", str(out)]
    options = [
        "--tiny",
        "--no-xla",
        "--fine-tune-layers",
        "2",
        "--set",
        "batch_size=8",
        "--set",
        "weights=null",
    ]
    record = throughput.main(arguments + options)
    assert record["fine_tune_layers"] == 2 and record["image_size"] == 96  # its recipe's (MODEL_RECIPES)
    assert all(row["train_images_per_second_pipeline"] > 0 for row in record["results"])


def test_append_adds_seeds_to_a_record_and_refuses_mismatches(tiny_archive, tmp_path):
    out = tmp_path / "record.json"
    common = ["--data", tiny_archive, "--model", "lenet", "--out", str(out), "--tiny"]
    common += ["--runs-dir", str(tmp_path / "runs"), "--set", "verbose=0"]
    time_to_accuracy.main([*common, "--seeds", "0"])
    record = time_to_accuracy.main([*common, "--seeds", "1", "--append"])
    assert record["seeds"] == [0, 1] and len(record["runs"]) == 2
    assert json.loads(out.read_text())["args"]["seed"] == [0, 1]
    with pytest.raises(SystemExit, match="already has seeds"):
        time_to_accuracy.main([*common, "--seeds", "1", "--append"])
    with pytest.raises(SystemExit, match="holds"):
        time_to_accuracy.main([*common, "--seeds", "2", "--append", "--set", "epochs=2"])
    out.write_text(json.dumps({**record, "machine": {**record["machine"], "cores": 64}}))
    with pytest.raises(SystemExit, match="another machine.*cores: 64.*same kind only"):
        time_to_accuracy.main([*common, "--seeds", "2", "--append"])


def test_tiny_linear_probe_compares_pretrained_with_random_weights(tiny_archive, tmp_path, capsys):
    out, cache = tmp_path / "probe.json", tmp_path / "cache"
    linear_probe.main(
        ["--data", tiny_archive, "--out", str(out), "--cache-dir", str(cache), "--image-size", "32"]
        + ["--train-per-class", "15", "--test-per-class", "4", "--precision", "float32"]
    )
    record = json.loads(out.read_text())
    assert record["model"] == "efficientnet_lite0" and record["image_size"] == 32
    assert (record["train_images"], record["test_images"]) == (150, 40)
    assert record["pretrained"]["weights"] == "imagenet" and record["random"]["weights"] is None
    for probe in (record["pretrained"], record["random"]):
        assert 0 <= probe["test_accuracy"] <= 1 and probe["inverse_regularisation"] in linear_probe.STRENGTHS
    # converted ImageNet weights keep their features alive; random ones shrink them block by block
    assert record["pretrained"]["feature_scale"] > 1000 * record["random"]["feature_scale"]
    assert len(list(cache.iterdir())) == 4  # train and test features for each set of weights
    assert "with imagenet weights" in capsys.readouterr().out


def test_crosscheck_keras_step_saves_inputs_and_pooled_features(tiny_archive, tmp_path):
    out = tmp_path / "lite0.npz"
    crosscheck_lite0_torch.main(
        ["keras", "--data", tiny_archive, "--images", "3", "--image-size", "64", "--out", str(out)]
    )
    saved = np.load(out)
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


def test_analysis_time_records_each_model_of_a_run(tiny_args, tmp_path):
    import train

    args = resolve_args(
        {**tiny_args, "small_run": True, "models": ["lenet"], "analysis": False, "run_name": "r"}
    )
    run_path = train.run_pipeline(args)
    assert not (tmp_path / "runs" / "r" / "lenet" / "analysis.json").exists()
    out = tmp_path / "analysis.json"
    compare = tmp_path / "compare"
    record = analysis_time.main(
        [
            "--data",
            tiny_args["data_path"],
            "--runs",
            run_path,
            "--out",
            str(out),
            "--compare-dir",
            str(compare),
            "--set",
            "robustness_per_class=1",
        ]
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(record))
    (model,) = record["models"]
    assert model["model"] == "lenet" and model["run"] == "r" and model["test_images"] == 40
    assert record["overrides"] == {"robustness_per_class": 1} and model["robustness"]["images"] == 10
    assert model["seconds"]["total"] > 0 and model["within_budget"] is True
    assert set(model["f1"]) == set(cifar.CLASS_NAMES) and model["calibration"]["temperature"] > 0
    assert model["test_accuracy_at_evaluation"] == pytest.approx(model["top1_accuracy"])
    assert (tmp_path / "runs" / "r" / "lenet" / "analysis.json").is_file()
    assert "| lenet |" in (compare / "analysis.md").read_text() and (compare / "per_class_f1.png").is_file()


def test_kill_resume_survives_kills_of_the_training_process(tiny_archive, tmp_path):
    from benchmarks.robustness import kill_resume

    record = kill_resume.kill_and_check(
        tiny_archive, str(tmp_path), kills=3, epochs=3, delays=(3.0, 9.0), seed=1
    )
    failed = [name for name, passed in record["checks"].items() if not passed]
    assert record["kills"] >= 1 and not failed, (failed, record["events"], record["error_tail"])
    assert record["failures"] == 0
    assert record["history_rows_checked"] == 3


def test_peak_memory_records_each_phase_of_a_pretrained_run(tiny_archive, tmp_path):
    from benchmarks.speed import peak_memory

    out = tmp_path / "memory.json"
    record = peak_memory.main(
        ["--data", tiny_archive, "--cases", "vgg16", "--epochs", "1", "--interval", "0.05", "--out", str(out)]
    )
    case = record["cases"]["vgg16"]
    assert case["exit_code"] == 0 and case["error"] is None, case
    assert 200 < case["peak_mib"] < 6 * 1024 and case["within_limit"] and record["all_within_limit"]
    assert {"train", "fine_tune", "testing and analysis"} <= set(case["phase_peak_mib_sampled"])
    assert max(case["phase_peak_mib_sampled"].values()) <= case["peak_mib"]
    assert json.loads(out.read_text())["machine"]["cores"] >= 1


def test_peak_memory_reports_a_failed_run_with_its_error(tiny_archive, tmp_path):
    from benchmarks.speed import peak_memory

    record = peak_memory.main(
        [
            "--data",
            tiny_archive,
            "--cases",
            "lenet",
            "--set",
            "image_size=1",
            "--out",
            str(tmp_path / "m.json"),
        ]
    )
    case = record["cases"]["lenet"]
    assert case["exit_code"] != 0 and "image_size" in case["error"] and not case["within_limit"]
    assert not record["all_within_limit"]


def test_peak_memory_passes_overrides_as_train_py_reads_them():
    from benchmarks.speed import peak_memory

    command = peak_memory.train_command(
        "data.tar.gz", "out", "vgg16", {"augment_flip": False, "weights": None, "fine_tune_layers": "all"}, 2
    )
    assert {"augment_flip=false", "weights=null", "fine_tune_layers=all", "models=vgg16", "epochs=2"} <= set(
        command
    )


def test_tiny_scaling_compares_one_and_two_workers(tmp_path):
    from benchmarks.speed import scaling

    out = tmp_path / "scaling.json"
    record = scaling.main(["--model", "lenet", "--batch-size", "8", "--steps", "2", "--out", str(out)])
    assert json.loads(out.read_text()) == record
    layouts = [(r["workers"], r["cores_per_worker"]) for r in record["configurations"]]
    assert layouts == [(1, 1), (2, 1), (1, 2)]
    assert all(r["images_per_second"] > 0 for r in record["configurations"])
    one, two = record["configurations"][0], record["configurations"][1]
    assert record["scaling_efficiency_2_workers"] == pytest.approx(
        two["images_per_second"] / (2 * one["images_per_second"]), abs=1e-3
    )
    assert "cpu_features" in record["machine"]


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


def test_tiny_profile_sums_op_time_per_type_and_writes_a_table(tiny_archive, tmp_path):
    from benchmarks.speed import profile_step

    out = tmp_path / "profile.json"
    common = ["--data", tiny_archive, "--model", "fast_cnn", "--preset", "fast", "--out", str(out)]
    profile_step.main([*common, "--tiny", "--steps", "2", "--top", "5", "--set", "batch_size=32"])
    record = json.loads(out.read_text())
    ops = {row["op"]: row for row in record["ops"]}
    assert any("Conv2D" in op for op in ops)  # the convolutions, whatever kernel library runs them
    assert abs(sum(row["share"] for row in record["ops"]) - 1) < 0.01
    assert record["ms_per_step_wall"] > 0 and record["batch_size"] == 32
    assert [row["ms_per_step"] for row in record["ops"]] == sorted(
        (r["ms_per_step"] for r in record["ops"]), reverse=True
    )
    table = (tmp_path / "profile.md").read_text().splitlines()
    assert len([line for line in table if line.startswith("| ") and "---" not in line]) == 1 + 5


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


def test_step_versus_revision_times_both_builders_in_turns(tmp_path, capsys):
    import keras

    from models.fast_cnn import ShiftedBatchNorm

    out = tmp_path / "ab.json"
    step_versus_revision.main(
        ["--before", "HEAD", "--precision", "float32", "--batch-size", "8", "--steps", "1", "--rounds", "2"]
        + ["--out", str(out)]
    )
    record = json.loads(out.read_text())
    assert len(record["before_revision"]) == 40 and record["preset"] == "fast_muon"
    assert record["batch_size"] == 8 and record["precision"] == "float32"
    for side in ("before", "after"):
        rates = record["train_images_per_second"][side]
        assert len(rates) == 2 and min(rates) > 0
        assert record["mean"][side] == pytest.approx(sum(rates) / 2, abs=0.1)
    assert capsys.readouterr().out.count("images/s") == 5
    # the revision's module registered nothing (a second "fast_cnn" builder would have raised):
    # the working tree's classes stand
    assert keras.saving.get_registered_object("cifar10>ShiftedBatchNorm") is ShiftedBatchNorm


def test_every_committed_record_names_its_command_commit_and_machine():
    """One folder per script under benchmarks/results/: each JSON record there, and each copied run
    folder or table (through its record.json), says which command, commit and machine made it."""
    import glob
    import os

    from benchmarks.common import RESULTS

    folders = sorted(path for path in glob.glob(os.path.join(RESULTS, "*")) if os.path.isdir(path))
    assert folders and not [path for path in glob.glob(os.path.join(RESULTS, "*")) if os.path.isfile(path)]
    records = []
    for folder in folders:
        records += glob.glob(os.path.join(folder, "*.json"))
        records += [os.path.join(sub, "record.json") for sub in glob.glob(os.path.join(folder, "*/"))]
        if not glob.glob(os.path.join(folder, "*.json")):
            records.append(os.path.join(folder, "record.json"))
    for path in records:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
        assert all(record.get(key) for key in ("command", "commit", "machine")), path


def test_write_record_heads_a_record_with_command_commit_and_machine(tmp_path):
    from benchmarks.common import write_record

    out = tmp_path / "record.json"
    write_record(str(out), {"value": 1})
    record = json.loads(out.read_text())
    assert list(record)[:3] == ["command", "commit", "machine"] and record["value"] == 1
    assert record["machine"]["cores"] >= 1 and record["machine"]["speed_probe_gflops"] > 0
