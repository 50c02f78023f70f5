"""Resolving `args`: overrides from the notebook, the command line or a JSON file, validated
before any work and merged into the defaults of `utils.settings`."""

import json
import os

from utils.errors import ConfigError
from utils.settings import DEFAULTS, PRESETS, SETTINGS


def default_args():
    """A fresh copy of the defaults, safe to modify."""
    return json.loads(json.dumps(DEFAULTS))


def resolve_args(overrides=None):
    """Validate `overrides` and merge them into the defaults.

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
    if args["small_run"]:
        args["epochs"] = 1
        args["fine_tune_epochs"] = min(args["fine_tune_epochs"], 1)
    return args


def check_value(key, value):
    """Raise ConfigError unless `value` is of a type and in the range that `key` accepts."""
    setting = SETTINGS[key]
    is_bool = isinstance(value, bool)
    type_ok = any(isinstance(value, kind) and (kind is bool or not is_bool) for kind in setting.types)
    if not type_ok or not setting.check(value):
        raise ConfigError(
            f"args[{key!r}] = {value!r} is not accepted: expected {setting.describe_accepted()}."
        )


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
    for name, options in args["model_options"].items():
        if not isinstance(options, dict):
            raise ConfigError(
                f"args['model_options'][{name!r}] = {options!r} is not accepted: expected a "
                "dict of keyword options."
            )


def parse_override(text):
    """Parse one `KEY=VALUE` command-line override; VALUE is JSON where possible.

    A comma-separated VALUE for `models` becomes a list, so
    `models=custom_cnn,vgg16` works without JSON quoting.
    """
    if "=" not in text:
        raise ConfigError(f"Override {text!r} is not accepted: expected KEY=VALUE.")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if key == "models" and isinstance(value, str):
        value = [name.strip() for name in value.split(",") if name.strip()]
    return key, value


def load_config_file(path):
    """Read a JSON file of `args` overrides."""
    if not os.path.isfile(path):
        raise ConfigError(f"Config file {path!r} does not exist.")
    try:
        with open(path, encoding="utf-8") as handle:
            overrides = json.load(handle)
    except json.JSONDecodeError as error:
        raise ConfigError(f"Config file {path!r} is not valid JSON: {error}.") from error
    if not isinstance(overrides, dict):
        raise ConfigError(f"Config file {path!r} must hold a JSON object of args.")
    return overrides


def add_override_arguments(parser):
    """The `--config FILE.json` and `--set KEY=VALUE` options of train.py and tune.py."""
    parser.add_argument("--config", help="JSON file of args overrides")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override one args key"
    )


def overrides_from(options):
    """The args overrides that parsed `--config` and `--set` options give (`--set` wins)."""
    overrides = load_config_file(options.config) if options.config else {}
    overrides.update(parse_override(text) for text in options.set)
    return overrides
