"""Search spaces: every key and range checked before a trial runs, declared to KerasTuner, applied."""

import json

import keras_tuner
import pytest

from utils.config.resolve import resolve_args
from utils.errors import ConfigError
from utils.tuning.spaces import (
    DEFAULT_SPACES_FILE,
    apply_values,
    check_space,
    declare_hyperparameters,
    load_space,
)

SPACE = {
    "learning_rate": {"min": 0.01, "max": 0.2, "sampling": "log"},
    "label_smoothing": {"min": 0.0, "max": 0.2, "step": 0.05},
    "batch_size": {"values": [64, 128]},
    "epochs": {"min": 2, "max": 6, "step": 2},
    "augment_flip": {"values": [True, False]},
    "model_options.custom_cnn.width": {"min": 16, "max": 48, "step": 16},
}


def test_declared_hyperparameters_have_the_right_kinds():
    hp = declare_hyperparameters(SPACE)
    kinds = {entry.name: type(entry).__name__ for entry in hp.space}
    assert kinds == {
        "learning_rate": "Float",
        "label_smoothing": "Float",
        "batch_size": "Choice",
        "epochs": "Int",
        "augment_flip": "Boolean",
        "model_options.custom_cnn.width": "Int",
    }
    assert hp.get("learning_rate") == pytest.approx(0.01) and hp.get("epochs") == 2
    learning_rate = next(entry for entry in hp.space if entry.name == "learning_rate")
    assert learning_rate.sampling == "log"


def test_sampled_values_always_make_valid_args():
    hp = declare_hyperparameters(SPACE)
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective="val_accuracy", max_trials=30, hyperparameters=hp, seed=0
    )
    for _ in range(30):
        values = oracle.populate_space(str(_))["values"]
        args = resolve_args(apply_values({"models": ["custom_cnn"]}, values))
        assert 0.01 <= args["learning_rate"] <= 0.2 and args["epochs"] in (2, 4, 6)
        assert args["model_options"]["custom_cnn"]["width"] in (16, 32, 48)
        assert args["augment_flip"] in (True, False)


def test_apply_values_merges_builder_options_and_skips_tuner_entries():
    base = {"models": ["custom_cnn"], "model_options": {"custom_cnn": {"dropout": 0.3}}, "epochs": 9}
    result = apply_values(base, {"model_options.custom_cnn.width": 24, "tuner/epochs": 3, "epochs": 4})
    assert result == {
        "models": ["custom_cnn"],
        "model_options": {"custom_cnn": {"dropout": 0.3, "width": 24}},
        "epochs": 4,
    }
    assert base["model_options"] == {"custom_cnn": {"dropout": 0.3}}  # not modified


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "non-empty"),
        ({"learning_rte": {"min": 0.1, "max": 1.0}}, "not an args key"),
        ({"data_path": {"values": ["a", "b"]}}, "cannot be searched"),
        ({"batch_size": {"min": 16.5, "max": 64}}, "takes integers only"),
        ({"learning_rate": {"min": 0.2, "max": 0.1}}, "min < max"),
        ({"learning_rate": {"min": "0.1", "max": 1.0}}, "min < max"),
        ({"learning_rate": {"min": 0.0, "max": 1.0, "sampling": "log"}}, "log scales need min > 0"),
        ({"learning_rate": {"min": 0.1, "max": 1.0, "sampling": "cubic"}}, "sampling 'cubic'"),
        ({"learning_rate": {"min": 0.1, "max": 1.0, "step": -1}}, "positive"),
        ({"learning_rate": {"min": 0.1, "max": 20.0}}, "(0, 10]"),
        ({"learning_rate": {"min": 0.1, "max": 1.0, "values": [1]}}, "a range"),
        ({"learning_rate": 0.1}, "a range"),
        ({"optimizer": {"values": ["sgd", "lion"]}}, "'lion'"),
        ({"optimizer": {"values": []}}, "non-empty list"),
        ({"optimizer": {"values": [["sgd"]]}}, "numbers, strings or booleans"),
        ({"augment_translate": {"values": [0, 0.125]}}, "mix types"),
        ({"model_options.lenet.width": {"values": [8]}}, "the searched model 'custom_cnn'"),
        ({"model_options.custom_cnn.depth": {"values": [8]}}, "takes the options"),
        ({"model_options.nonet.width": {"values": [8]}}, "MODEL one of"),
    ],
)
def test_bad_spaces_are_refused_with_the_key_and_what_is_accepted(space, message):
    with pytest.raises(ConfigError) as error:
        check_space(space, "custom_cnn")
    assert message in str(error.value)


def test_every_default_space_is_valid_for_its_family():
    with open(DEFAULT_SPACES_FILE, encoding="utf-8") as handle:
        families = json.load(handle)
    representatives = {"pretrained": "efficientnet_lite0"}
    for family in families:
        model = representatives.get(family, family)
        assert load_space(None, model) == families[family]
        assert load_space(family, model) == families[family]


def test_load_space_reads_a_file_and_names_bad_ones(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"learning_rate": {"min": 0.01, "max": 0.1}}))
    assert load_space(str(path), "custom_cnn") == {"learning_rate": {"min": 0.01, "max": 0.1}}
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_space(str(path), "custom_cnn")
    with pytest.raises(ConfigError, match="neither a file nor a family"):
        load_space(str(tmp_path / "missing.json"), "custom_cnn")
