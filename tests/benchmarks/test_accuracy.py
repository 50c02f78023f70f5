"""benchmarks/accuracy/ in its tiny modes: time to accuracy, comparisons, linear probes."""

import json

import pytest

from benchmarks.accuracy import linear_probe, time_to_accuracy

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
