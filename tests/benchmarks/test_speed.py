"""benchmarks/speed/ in its tiny modes: throughput, analysis time, memory, scaling, profiles, A/B steps."""

import json

import numpy as np
import pytest

from benchmarks.speed import analysis_time, step_versus_revision
from utils.config.resolve import resolve_args
from utils.data import cifar10 as cifar

pytestmark = pytest.mark.slow  # runs the benchmark scripts in their tiny mode


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
    assert record["fine_tune_layers"] == 2 and record["image_size"] == 160  # its short recipe's side
    assert all(row["train_images_per_second_pipeline"] > 0 for row in record["results"])


def test_analysis_time_records_each_model_of_a_run(tiny_args, tmp_path):
    from utils.steps import run_pipeline

    args = resolve_args(
        {**tiny_args, "small_run": True, "models": ["lenet"], "analysis": False, "run_name": "r"}
    )
    run_path = run_pipeline(args)
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


def test_default_run_times_train_py_with_its_defaults(tiny_archive, tmp_path):
    from benchmarks.speed import default_run

    out = tmp_path / "default_run.json"
    sets = ["small_run=true", "verbose=0", "models=fast_cnn,efficientnet_lite0"]  # what offline gives
    assert (
        default_run.main(["--data", tiny_archive, *sum((["--set", s] for s in sets), []), "--out", str(out)])
        == 0
    )
    record = json.loads(out.read_text())
    assert record["command"].startswith("python -m benchmarks.speed.default_run --data")
    assert record["exit_code"] == 0 and record["within_budget"] and record["budget_minutes"] == 20.0
    assert record["models"] == ["fast_cnn", "efficientnet_lite0"]
    assert set(record["results"]) == {"fast_cnn", "efficientnet_lite0"}
    assert 0 < record["minutes"] < 20 and record["model_args"]["fast_cnn"]["optimizer"] == "muon_sgd"
