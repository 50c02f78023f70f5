import re

import pytest

from models.registry import model_recipes
from utils.config.resolve import args_for_model, resolve_args
from utils.config.settings import DEFAULTS, PRESETS, SETTINGS, describe_args_markdown
from utils.errors import ConfigError, UnknownModelError


def test_defaults_validate_and_are_copied():
    args = resolve_args()
    assert args == {**DEFAULTS, "model_args": model_recipes()}  # null model_args: the recipes
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
        ("optimizer", "lion", '"sgd", "adam", "amsgrad", "adamw", "rmsprop", "muon" or "muon_sgd"'),
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
    recipe = resolve_args({"small_run": True, "budget": "long"})["model_args"]["efficientnet_lite0"]
    assert (recipe["epochs"], recipe["fine_tune_epochs"], recipe["image_size"]) == (1, 1, 96)


def test_pretrained_models_get_their_recipe_less_what_the_run_sets():
    lite0 = args_for_model(resolve_args({"models": ["efficientnet_lite0"]}), "efficientnet_lite0")
    assert {key: lite0[key] for key in model_recipes()["efficientnet_lite0"]} == model_recipes()[
        "efficientnet_lite0"
    ]
    assert args_for_model(resolve_args(), "resnet50")["epochs"] == DEFAULTS["epochs"]  # no recipe
    args = resolve_args({"image_size": 96, "fine_tune_epochs": 2, "budget": "long"})
    assert args_for_model(args, "efficientnet_lite0")["image_size"] == 96  # what the run sets holds
    assert args_for_model(args, "efficientnet_lite0")["fine_tune_epochs"] == 2
    assert args["model_args"]["efficientnet_lite0"]["epochs"] == 1  # the rest of the recipe stays
    assert "image_size_start" not in args["model_args"]["efficientnet_lite0"]  # its schedule needs both
    for run_sets in ({"image_size": 64}, {"fine_tune_epochs": 0}):  # no size schedule they cannot take
        assert "image_size_start" not in resolve_args(run_sets)["model_args"]["efficientnet_lite0"]
    assert "epochs" not in resolve_args({"preset": "fast"})["model_args"]["efficientnet_lite0"]  # set by it
    assert resolve_args({"model_args": {}})["model_args"] == {}  # every model the run's args
    given = {"lenet": {"epochs": 5}}
    assert resolve_args({"model_args": given, "small_run": True})["model_args"] == {"lenet": {"epochs": 1}}
    assert given == {"lenet": {"epochs": 5}}  # the caller's dict is left as given
    recorded = resolve_args({"image_size": 96})
    assert resolve_args(recorded) == recorded  # resolving a run's recorded args changes nothing


@pytest.mark.parametrize(
    "model_args, message",
    [
        (
            {"lenet": {"seed": 8}},
            r"\['model_args'\]\['lenet'\] sets \['seed'\].*accepted keys: image_size",
        ),
        ({"lenet": {"epochs": 0}}, r"args\['model_args'\]\['lenet'\]\['epochs'\] = 0 is not accepted"),
        ({"lenet": 3}, r"\['model_args'\]\['lenet'\] = 3 is not accepted: expected a dict"),
        (
            {"efficientnet_lite0": {"image_size_start": 96}},
            r"For efficientnet_lite0, with its args\['model_args'\] entry .*needs a larger",
        ),
    ],
)
def test_bad_model_args_say_which_model_and_what_is_accepted(model_args, message):
    with pytest.raises(ConfigError, match=message):
        resolve_args({"model_args": model_args, "image_size": 64})


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
    with pytest.raises(
        ConfigError, match='args\\[\'preset\'\\] = \'turbo\'.*"fast", "fast_muon", "full" or "original"'
    ):
        resolve_args({"preset": "turbo"})


def test_airbench_rates_convert_to_the_presets_values():
    """The recipes' unit conversions, computed once: airbench94's per-1024 rates and
    airbench94_muon's summed-loss rates give the presets' learning rates and decays."""
    from utils.config.settings import PRESETS, decoupled_decay, kilostep_scale, mean_loss_rate

    assert kilostep_scale(0.85) == pytest.approx(7850.67, abs=0.01)
    assert mean_loss_rate(11.5 / kilostep_scale(0.85), 1024) == pytest.approx(1.50, abs=1e-3)
    assert decoupled_decay(0.0153 * 1024 / kilostep_scale(0.85), 0.85, 1.5) == pytest.approx(
        0.00887, abs=1e-5
    )
    shifts, head = mean_loss_rate(0.053, 2000, gain=64), mean_loss_rate(0.67, 2000, gain=(256 / 9) ** 2)
    assert shifts == pytest.approx(head, rel=0.01) == pytest.approx(1.66, abs=0.01)
    assert (PRESETS["fast"]["learning_rate"], PRESETS["fast"]["weight_decay"]) == (1.5, 0.0089)
    assert (PRESETS["fast_muon"]["learning_rate"], PRESETS["fast_muon"]["weight_decay"]) == (1.66, 0.0161)


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (
            {"models": ["custom_cnn", "custom_cnn"]},
            ConfigError,
            r"a non-empty list of model names, each once",
        ),
        (
            {"model_options": {"custom_cnn": {"depth": 3}}},
            ConfigError,
            r"\['model_options'\]\['custom_cnn'\] sets \['depth'\], which custom_cnn's builder "
            r"does not take; "
            r"it takes width, dropout",
        ),
        ({"models": ["resnet9000"]}, UnknownModelError, r"Unknown model 'resnet9000'. Registered models: "),
        ({"model_args": {"nosuch": {"epochs": 2}}}, UnknownModelError, r"Unknown model 'nosuch'"),
        (
            {"budget": "medium"},
            ConfigError,
            r"args\['budget'\] = 'medium' is not accepted: expected \"short\"",
        ),
    ],
)
def test_models_and_their_options_are_checked_before_any_work(overrides, error, message):
    with pytest.raises(error, match=message):
        resolve_args(overrides)


def test_the_budget_picks_each_models_recipe():
    short, long = resolve_args()["model_args"], resolve_args({"budget": "long"})["model_args"]
    assert (
        short["fast_cnn"]
        == long["fast_cnn"]
        == {key: value for key, value in PRESETS["fast_muon"].items() if key != "models"}
    )
    assert (
        short["efficientnet_lite0"]["fine_tune_epochs"],
        long["efficientnet_lite0"]["fine_tune_epochs"],
    ) == (0, 8)
    assert "vgg16" in short and "vgg16" not in long  # no long recipe: the run's args
    assert resolve_args({"preset": "full"})["models"] == ["custom_cnn", "lenet", "fast_cnn", "vgg16"]


def test_a_model_with_its_own_batch_and_augmentation_trains_on_its_own_pipelines(tiny_archive):
    from utils.steps import datasets_for_model, load_data, make_datasets

    args = resolve_args({"data_path": tiny_archive, "small_run": True})
    datasets = make_datasets(load_data(args), args)
    own = args_for_model(args, "fast_cnn")  # batch 2000, alternating flip, 2-pixel shifts
    fast = datasets_for_model(datasets, args, own)
    assert fast is not datasets and fast.steps_per_epoch == 1 and datasets.steps_per_epoch > 1
    lite0 = datasets_for_model(datasets, args, args_for_model(args, "efficientnet_lite0"))
    assert lite0.augmenter is None  # its frozen recipe: no augmentation, so cached features
    same = datasets_for_model(datasets, args, args_for_model(args, "lenet"))
    assert same is datasets
