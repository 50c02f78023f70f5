"""Args overrides from the command line (`--set KEY=VALUE`) and JSON files (`--config`), for
train.py, tune.py and the benchmarks; `utils.config.resolve.resolve_args` validates them."""

import json
import os

from utils.errors import ConfigError


def parse_override(text):
    """Parse one `KEY=VALUE` command-line override; VALUE is JSON where possible.

    A comma-separated VALUE for `models` or `seeds` becomes a list, so `models=custom_cnn,vgg16`
    and `seeds=0,1` work without JSON quoting.
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
    if key == "seeds" and isinstance(value, str):
        try:
            value = [int(seed) for seed in value.split(",")]
        except ValueError:
            pass  # left as text: resolve_args says what seeds accepts
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
