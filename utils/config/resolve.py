"""Resolving `args`: overrides from the notebook, the command line or a JSON file, validated
before any work and merged into the defaults of `utils.config.settings`; each model's own args."""

import json

from models.registry import model_entry, model_options, model_recipes
from utils.config.settings import (
    DEFAULTS,
    MODEL_ARGS_KEYS,
    PRESETS,
    RECIPE_KEY_NEEDS,
    SETTINGS,
)
from utils.errors import ConfigError


def default_args():
    """A fresh copy of the defaults, safe to modify."""
    return json.loads(json.dumps(DEFAULTS))


def resolve_args(overrides=None):
    """Validate `overrides` and merge them into the defaults.

    `model_args` left null becomes each model's measured recipe (`models.registry.model_recipes()`)
    less the keys `overrides` or their preset set, so what a user sets for the run holds for every
    model.

    Raises:
        ConfigError: naming the key, the value and what is accepted, for an
            unknown key, a wrong type or an out-of-range value.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"Unknown args key(s) {unknown}. Known keys: {', '.join(SETTINGS)}.")
    args = default_args()
    preset = overrides.get("preset")
    check_value("preset", preset)
    args.update(PRESETS.get(preset, {}))
    args.update(overrides)
    for key, value in args.items():
        check_value(key, value)
    _check_combinations(args)
    _check_models(args)
    if args["seeds"]:
        args["seed"] = args["seeds"][0]  # the session, the data split and the first seed's models
    args["model_args"] = _each_models_own_args(args, set(overrides) | set(PRESETS.get(preset, {})))
    for settings in (args, *args["model_args"].values()):
        _shorten_for_small_run(settings, args["small_run"])
    return args


def _each_models_own_args(args, run_keys):
    """args['model_args'] checked, each model's entry with the run's args, and copied (the caller's
    stays as given); null gives the recipes less `run_keys`, the keys set for the whole run."""
    given = recipes_without(run_keys, args["budget"]) if args["model_args"] is None else args["model_args"]
    own_args = {}
    for name, model_args in given.items():
        _check_model_args(name, model_args)
        try:
            _check_combinations({**args, **model_args})
        except ConfigError as error:
            raise ConfigError(
                f"For {name}, with its args['model_args'] entry {model_args}: {error}"
            ) from None
        own_args[name] = dict(model_args)
    return own_args


def recipes_without(run_keys, budget="short"):
    """The models' recipes for `budget` less `run_keys`, the keys set for the whole run (by the user
    or a preset), and less the keys that need one of those (`RECIPE_KEY_NEEDS`)."""
    dropped = set(run_keys) | {key for key, needs in RECIPE_KEY_NEEDS.items() if set(needs) & set(run_keys)}
    recipes = model_args_without(model_recipes(budget), dropped)
    return {name: recipe for name, recipe in recipes.items() if recipe}


def args_for_model(args, name):
    """The args model `name` is built and trained with: the run's, under its `model_args` entry."""
    return {**args, **args["model_args"].get(name, {})}


def model_args_without(model_args, keys):
    """`model_args` with `keys` taken out of every model's entry (None, the recipes, stays None:
    `resolve_args` leaves out of them what the run sets)."""
    if model_args is None:
        return None
    return {
        name: {key: value for key, value in entry.items() if key not in keys}
        for name, entry in model_args.items()
    }


def _shorten_for_small_run(settings, small_run):
    """A small run trains one epoch per phase (of those `settings` set)."""
    if small_run and "epochs" in settings:
        settings["epochs"] = 1
    if small_run and "fine_tune_epochs" in settings:
        settings["fine_tune_epochs"] = min(settings["fine_tune_epochs"], 1)


def check_value(key, value, where="args"):
    """Raise ConfigError unless `value` is of a type and in the range that `key` accepts (the
    message names it as `where[key]`)."""
    setting = SETTINGS[key]
    is_bool = isinstance(value, bool)
    type_ok = any(isinstance(value, kind) and (kind is bool or not is_bool) for kind in setting.types)
    if not type_ok or not setting.check(value):
        raise ConfigError(
            f"{where}[{key!r}] = {value!r} is not accepted: expected {setting.describe_accepted()}."
        )


def _check_model_args(name, model_args):
    """Raise ConfigError unless one model's `model_args` entry is a dict of accepted keys and values."""
    if not isinstance(model_args, dict):
        raise ConfigError(
            f"args['model_args'][{name!r}] = {model_args!r} is not accepted: expected a dict of args."
        )
    other = sorted(set(model_args) - set(MODEL_ARGS_KEYS))
    if other:
        raise ConfigError(
            f"args['model_args'][{name!r}] sets {other}, which a model cannot take apart from the run; "
            f"accepted keys: {', '.join(MODEL_ARGS_KEYS)}."
        )
    for key, value in model_args.items():
        check_value(key, value, where=f"args['model_args'][{name!r}]")


def _check_combinations(args):
    if args["reduce_lr_patience"] is not None and args["lr_schedule"] != "constant":
        raise ConfigError(
            f"args['reduce_lr_patience'] = {args['reduce_lr_patience']!r} needs "
            f"args['lr_schedule'] = 'constant' (got {args['lr_schedule']!r}): ReduceLROnPlateau "
            "cannot change a scheduled learning rate."
        )
    if args["ema_momentum"] is not None and args["lookahead_steps"] is not None:
        raise ConfigError(
            f"args['ema_momentum'] = {args['ema_momentum']!r} and args['lookahead_steps'] = "
            f"{args['lookahead_steps']!r} both average the weights: set one of them to None."
        )
    start = args["image_size_start"]
    if start is not None and (start >= args["image_size"] or args["fine_tune_epochs"] < 1):
        raise ConfigError(
            f"args['image_size_start'] = {start!r} needs a larger args['image_size'] (got "
            f"{args['image_size']!r}) and args['fine_tune_epochs'] >= 1 (got {args['fine_tune_epochs']!r}): "
            "fine-tuning raises the side from the first to the second."
        )


def _check_models(args):
    """Raise UnknownModelError for a model name that is not registered (in models, model_options or
    model_args), ConfigError for model options its builder does not take."""
    named = [*args["models"], *args["model_options"], *(args["model_args"] or {})]
    for name in named:
        model_entry(name)
    for name, options in args["model_options"].items():
        if not isinstance(options, dict):
            raise ConfigError(
                f"args['model_options'][{name!r}] = {options!r} is not accepted: expected a "
                "dict of keyword options."
            )
        unknown = sorted(set(options) - set(model_options(name)))
        if unknown:
            raise ConfigError(
                f"args['model_options'][{name!r}] sets {unknown}, which {name}'s builder does not take; "
                f"it takes {', '.join(model_options(name))}."
            )
