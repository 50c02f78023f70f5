"""The budget frontier: which approach wins within each training time, and its benchmark."""

import json

import pytest

from benchmarks.accuracy import budget_frontier
from models.registry import model_entry
from utils.evaluation.frontier import best_within, frontier_conclusion, winners
from utils.runtime.environment import choose_precision


def point(name, approach, minutes, accuracy, phase="scratch"):
    return {
        "name": name,
        "approach": approach,
        "phase": phase,
        "train_seconds": 60 * minutes,
        "test_accuracy": accuracy,
    }


POINTS = [
    point("quick cnn", "from scratch", 4, 0.80),
    point("long cnn", "from scratch", 25, 0.90),
    point("frozen", "pretrained", 12, 0.84, "frozen"),
    point("fine-tuned", "pretrained", 50, 0.93, "finetune"),
]


def test_best_within_takes_the_most_accurate_run_that_fits():
    assert best_within(POINTS, "from scratch", 30)["name"] == "long cnn"
    assert best_within(POINTS, "from scratch", 24)["name"] == "quick cnn"
    assert best_within(POINTS, "pretrained", 11) is None


def test_winners_per_budget():
    table = winners(POINTS)
    assert [table[m]["winner"] for m in ("5", "15", "30", "60")] == [
        "from scratch",
        "pretrained",
        "from scratch",
        "pretrained",
    ]
    assert table["5"]["best"] == {"from scratch": {"name": "quick cnn", "test_accuracy": 0.80}}
    assert winners(POINTS, budgets=(1,))["1"] == {"best": {}, "winner": None}


def test_conclusion_names_the_winner_and_the_runner_up_of_each_budget():
    text = frontier_conclusion({"points": POINTS})
    lines = text.splitlines()
    assert lines[0] == (
        "- Within 5 minutes: **from scratch** wins with quick cnn (80.00%); no pretrained run fits."
    )
    assert lines[1] == (
        "- Within 15 minutes: **pretrained** wins with frozen (84.00%) over from scratch quick cnn (80.00%)."
    )
    assert "**pretrained** wins with fine-tuned (93.00%)" in lines[3]


@pytest.mark.slow  # a training run of several phases or a subprocess
def test_tiny_frontier_writes_a_record_and_a_figure(tiny_archive, tmp_path):
    out, figure = tmp_path / "frontier.json", tmp_path / "frontier.png"
    common = ["--data", tiny_archive, "--set", "small_run=true"]
    common += ["--set", f"feature_cache_dir={tmp_path / 'cache'}"]
    budget_frontier.main(
        [*common, "--set", "precision=float32", "--points", "fast_cnn 3 ep", "--out", str(out)]
    )
    record = budget_frontier.main(
        [
            *common,
            "--points",
            "lite0 frozen 96px 3 depths",
            "--append",
            "--out",
            str(out),
            "--figure",
            str(figure),
        ]
    )
    assert [p["name"] for p in record["points"]] == ["fast_cnn 3 ep", "lite0 frozen 96px 3 depths"]
    scratch, frozen = record["points"]
    assert (scratch["approach"], scratch["phase"]) == ("from scratch", "scratch")
    assert (frozen["approach"], frozen["phase"], frozen["image_size"]) == ("pretrained", "frozen", 96)
    assert frozen["feature_seconds"] > 0 and frozen["overrides"]["feature_depths"] == 3
    # the precision its model was built with, not the session's (which differs on bf16 CPUs)
    assert frozen["precision"] == choose_precision("auto", model_entry("efficientnet_lite0").cpu_float32)
    assert all(0 <= p["test_accuracy"] <= 1 and p["train_seconds"] > 0 for p in record["points"])
    assert set(record["winners"]) == {"5", "15", "30", "60"}
    assert json.loads(out.read_text())["points"] == record["points"]
    assert figure.stat().st_size > 10_000
    assert not (tmp_path / "cache").exists()  # each point extracts its features afresh (their time counts)


def test_append_refuses_a_record_from_another_kind_of_machine(tmp_path):
    out = tmp_path / "frontier.json"
    machine = {**budget_frontier.machine_description(), "cpu_features": ["avx512_bf16"], "cores": 64}
    out.write_text(json.dumps({"points": [point("fast", "from scratch", 5, 0.8)], "machine": machine}))
    with pytest.raises(SystemExit, match="another machine.*cores: 64.*write a new --out"):
        budget_frontier.main(["--data", "unused", "--points", "fast_cnn 3 ep", "--append", "--out", str(out)])
    assert budget_frontier.appendable_points(str(tmp_path / "absent.json")) == []
