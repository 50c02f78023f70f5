import csv

import pytest

from utils.errors import RunFolderError
from utils.evaluation.report import pareto_front, recipe_groups, report_rows, write_report
from utils.runs.folders import write_json


def metrics(model, seconds, accuracy):
    return {
        "model": model,
        "test_loss": 1.0 - accuracy,
        "test_accuracy": accuracy,
        "test_accuracy_tta": accuracy + 0.01,
        "params": 1000,
        "epochs": 3,
        "train_seconds": seconds,
        "eval_seconds": 1.0,
    }


def write_run(root, name, rows, checkpoint=True, finished=True):
    """A run folder as train.py leaves it, with a history and an analysis per model."""
    run = root / name
    for row in rows:
        model_dir = run / row["model"]
        model_dir.mkdir(parents=True)
        (model_dir / "history.csv").write_text("epoch,loss,val_loss\n0,2.0,1.5\n1,1.0,1.2\n2,0.5,1.3\n")
        if checkpoint:
            (model_dir / "best.keras").write_bytes(b"model")
        write_json(
            str(model_dir / "analysis.json"),
            {"calibration": {"before": {"ece": 0.05}}, "robustness": {"mean": 0.6}},
        )
    if finished:
        write_json(str(run / "metrics.json"), {row["model"]: row for row in rows})
    return run


def test_report_over_two_runs(tmp_path):
    write_run(tmp_path, "a", [metrics("slow_good", 600, 0.9), metrics("fast_bad", 60, 0.7)])
    write_run(tmp_path, "b", [metrics("dominated", 700, 0.8)], checkpoint=False)
    write_run(tmp_path, "c", [metrics("unfinished", 1, 1.0)], finished=False)
    rows = report_rows(str(tmp_path))
    assert [(row["run"], row["model"]) for row in rows] == [
        ("a", "slow_good"),
        ("a", "fast_bad"),
        ("b", "dominated"),
    ]
    assert rows[0]["best_epoch"] == 2  # lowest validation loss
    assert rows[2]["best_epoch"] == 3  # no checkpoint: the last epoch was tested
    assert rows[0]["ece"] == 0.05 and rows[0]["mean_corruption_accuracy"] == 0.6
    assert pareto_front(rows) == [1, 0]
    table = write_report(str(tmp_path))
    assert (
        "| slow_good | — | a | 1,000 | 600 | 2 | 0.1000 | 90.00% | 91.00% | 5.00% | 60.00% | yes |" in table
    )
    assert "| dominated | — | b | 1,000 | 700 | 3 | 0.2000 | 80.00% | 81.00% | 5.00% | 60.00% |  |" in table
    assert "more than once" not in table  # every model once
    assert (tmp_path / "report.md").read_text() == table + "\n"
    with open(tmp_path / "report.csv", newline="") as handle:
        assert [row["pareto"] for row in csv.DictReader(handle)] == ["True", "True", "False"]
    assert (tmp_path / "report.png").stat().st_size > 0


def test_report_of_a_run_without_analysis(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    write_json(str(run / "metrics.json"), {"m": metrics("m", 10, 0.5)})
    (row,) = report_rows(str(tmp_path))
    assert row["best_epoch"] is None and row["ece"] is None
    assert "| m | — | old | 1,000 | 10 | — | 0.5000 | 50.00% | 51.00% | — | — | yes |" in write_report(
        str(tmp_path)
    )


def test_report_needs_finished_runs(tmp_path):
    with pytest.raises(RunFolderError, match="holds no finished run"):
        report_rows(str(tmp_path))
    with pytest.raises(RunFolderError, match="is not a folder of runs"):
        report_rows(str(tmp_path / "missing"))


def write_seeded_run(root, name, seeds_and_accuracies, epochs=3):
    """A finished run of model m trained with args["seeds"]: per-seed folders, metrics by label."""
    run = root / name
    rows = {}
    for seed, accuracy in seeds_and_accuracies:
        (run / "m" / f"seed_{seed}").mkdir(parents=True)
        rows[f"m seed {seed}"] = {**metrics("m", 100, accuracy), "seed": seed}
    write_json(str(run / "args.json"), {"models": ["m"], "model_args": {}, "epochs": epochs, "seed": 0})
    write_json(str(run / "metrics.json"), rows)
    return run


def test_report_groups_the_seeds_and_runs_of_one_recipe(tmp_path):
    write_seeded_run(tmp_path, "a", [(0, 0.80), (1, 0.82)])
    write_seeded_run(tmp_path, "b", [(2, 0.84)])
    write_seeded_run(tmp_path, "c", [(0, 0.60)], epochs=1)  # another recipe, trained once
    rows = report_rows(str(tmp_path))
    assert [(row["run"], row["seed"]) for row in rows] == [("a", 0), ("a", 1), ("b", 2), ("c", 0)]
    (group,) = recipe_groups(rows)
    assert group["model"] == "m (recipe 1)" and group["runs_in"] == ["a", "b"] and group["seeds"] == [0, 1, 2]
    assert group["test_accuracy"]["mean"] == pytest.approx(0.82)
    assert group["test_accuracy"]["std"] == pytest.approx(0.02)
    table = write_report(str(tmp_path))
    assert "| m (recipe 1) | 0, 1, 2 | 82.00 ± 2.00% | 80.00 - 84.00% |" in table
    assert "m (recipe 2)" not in table
