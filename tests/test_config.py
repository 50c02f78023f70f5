import json
import re

import pytest

from utils.config import load_config_file, parse_override, resolve_args
from utils.errors import ConfigError
from utils.settings import DEFAULTS, SETTINGS, describe_args_markdown


def test_defaults_validate_and_are_copied():
    args = resolve_args()
    assert args == DEFAULTS
    args["models"].append("x")
    assert "x" not in DEFAULTS["models"]


def test_unknown_key_names_it_and_lists_known_keys():
    with pytest.raises(ConfigError, match=r"Unknown args key\(s\) \['epoch'\].*Known keys: data_path"):
        resolve_args({"epoch": 3})


@pytest.mark.parametrize(
    "key, value, accepted",
    [
        ("epochs", 0, "an integer >= 1"),
        ("epochs", 2.5, "an integer >= 1"),
        ("epochs", True, "an integer >= 1"),
        ("val_fraction", 0.9, r"a number in \[0, 0.5\]"),
        ("optimizer", "lion", '"sgd", "adam", "amsgrad", "adamw", "rmsprop" or "muon"'),
        ("models", [], "a non-empty list of model names"),
        ("augment_flip", "yes", 'true, false or "alternating"'),
        ("fine_tune_layers", -1, 'an integer >= 0 or "all"'),
        ("precision", "float64", '"auto", "float32"'),
        ("jit_compile", "yes", '"auto", true or false'),
        ("ema_momentum", 1.0, r"a number in \(0, 1\) or null"),
    ],
)
def test_bad_value_names_key_value_and_accepted(key, value, accepted):
    with pytest.raises(
        ConfigError, match=rf"args\[{key!r}\] = {re.escape(repr(value))}.*expected {accepted}"
    ):
        resolve_args({key: value})


def test_reduce_on_plateau_needs_constant_schedule():
    with pytest.raises(ConfigError, match="lr_schedule"):
        resolve_args({"reduce_lr_patience": 3, "lr_schedule": "cosine"})
    assert resolve_args({"reduce_lr_patience": 3, "lr_schedule": "constant"})["reduce_lr_patience"] == 3


def test_ema_and_lookahead_are_not_combined():
    with pytest.raises(ConfigError, match="both average the weights"):
        resolve_args({"ema_momentum": 0.99, "lookahead_steps": 5})
    assert resolve_args({"ema_momentum": 0.99})["ema_momentum"] == 0.99


def test_small_run_forces_one_epoch_per_phase():
    args = resolve_args({"small_run": True, "epochs": 50, "fine_tune_epochs": 5})
    assert (args["epochs"], args["fine_tune_epochs"]) == (1, 1)


def test_parse_override_reads_json_and_model_lists():
    assert parse_override("epochs=30") == ("epochs", 30)
    assert parse_override("weights=null") == ("weights", None)
    assert parse_override("data_path=/tmp/x.tar.gz") == ("data_path", "/tmp/x.tar.gz")
    assert parse_override("models=custom_cnn,vgg16") == ("models", ["custom_cnn", "vgg16"])
    assert parse_override('model_options={"lenet": {"dropout": 0.1}}')[1] == {"lenet": {"dropout": 0.1}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("epochs")


def test_config_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 3}))
    assert load_config_file(str(path)) == {"epochs": 3}
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="JSON object"):
        load_config_file(str(path))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(str(tmp_path / "missing.json"))


def test_args_reference_lists_every_key():
    table = describe_args_markdown()
    assert all(f"| `{key}` |" in table for key in SETTINGS)


def test_presets_apply_under_user_overrides():
    fast = resolve_args({"preset": "fast", "epochs": 3})
    assert fast["models"] == ["fast_cnn"] and fast["lr_schedule"] == "warmup_linear"
    assert fast["epochs"] == 3  # the user's override wins over the preset
    original = resolve_args({"preset": "original"})
    assert (original["optimizer"], original["batch_size"], original["precision"]) == ("adam", 32, "float32")
    assert original["reduce_lr_factor"] == pytest.approx(1 / 3) and original["early_stopping_patience"] == 10


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="args\\['preset'\\] = 'turbo'.*\"fast\" or \"original\""):
        resolve_args({"preset": "turbo"})
