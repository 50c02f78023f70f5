"""args["seeds"]: every model trained once per seed in one run folder, tested with its spread."""

import os

import matplotlib
import pytest

from utils.config.resolve import resolve_args
from utils.errors import ConfigError
from utils.evaluation.test_set import row_label
from utils.runs.folders import RunFolder, read_json
from utils.steps import (
    conclusion,
    evaluate_and_analyse,
    load_data,
    load_run_models,
    make_datasets,
    run_pipeline,
)

matplotlib.use("Agg")
pytestmark = pytest.mark.slow  # trains four tiny models


@pytest.mark.parametrize("seeds", [[], [0, 0], ["0"], [True], 3])
def test_seeds_must_be_distinct_integers(seeds):
    with pytest.raises(ConfigError, match="seeds.*non-empty list of distinct integers"):
        resolve_args({"seeds": seeds})


def test_the_first_seed_becomes_the_runs_seed():
    assert resolve_args({"seeds": [7, 8], "seed": 42})["seed"] == 7
    assert resolve_args({})["seeds"] is None


def test_two_seed_run_writes_per_seed_rows_means_and_spreads(tiny_args):
    args = resolve_args(
        {
            **tiny_args,
            "small_run": True,
            "models": ["lenet", "efficientnet_lite0"],
            "model_args": {},
            "analysis": False,
            "seeds": [0, 1],
            "run_name": "seeds",
        }
    )
    run_path = run_pipeline(args)
    for name in ("lenet", "efficientnet_lite0"):
        for seed in (0, 1):
            assert os.path.isfile(os.path.join(run_path, name, f"seed_{seed}", "history.csv")), (name, seed)
        assert os.path.isfile(os.path.join(run_path, name, "curves_seeds.png"))
    metrics = read_json(os.path.join(run_path, "metrics.json"))
    assert set(metrics) == {
        f"{name} seed {seed}" for name in ("lenet", "efficientnet_lite0") for seed in (0, 1)
    }
    assert metrics["lenet seed 1"]["seed"] == 1
    assert (
        metrics["lenet seed 0"]["test_loss"] != metrics["lenet seed 1"]["test_loss"]
    )  # other init and order
    table = open(os.path.join(run_path, "comparison.md"), encoding="utf-8").read()
    assert "Over the seeds:" in table and "| lenet | 0, 1 |" in table
    assert "| lenet | efficientnet_lite0 |" in table  # the difference over the seeds
    assert "| lenet seed 0 | efficientnet_lite0 seed 0 |" in table  # each seed's paired test
    assert "| lenet seed 0 | efficientnet_lite1 seed 1 |" not in table
    reloaded = load_run_models(run_path)
    assert [trained.label for trained in reloaded] == [
        "lenet seed 0",
        "efficientnet_lite0 seed 0",
        "lenet seed 1",
        "efficientnet_lite0 seed 1",
    ]
    evaluation = evaluate_and_analyse(
        reloaded, make_datasets(load_data(args), args), RunFolder(run_path, resumed=True), args
    )
    assert [item["model"] for item in evaluation.spread] == ["lenet", "efficientnet_lite0"]
    tested_again = {row_label(row): row["test_accuracy"] for row in evaluation.rows}
    assert tested_again == {label: row["test_accuracy"] for label, row in metrics.items()}  # reloaded
    text = conclusion(evaluation, reloaded)
    assert "(mean ± sd of its seeds)" in text and "interval over 2 seeds" in text
    assert "seed 0: " in text  # the first seed's paired test on the same images
