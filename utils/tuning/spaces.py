"""Search spaces over `args`: read and check them, declare them to KerasTuner, apply a trial's values.

A space is a JSON object from an `args` key (or `model_options.MODEL.OPTION`, a builder option)
to either a range `{"min": 0.01, "max": 0.2, "sampling": "log", "step": null}` or a choice
`{"values": [64, 128, 256]}`. A range is an integer range when the key takes integers only
(or, for a builder option, when its bounds are integers), else a float range. Every bound and
value is checked against what the key accepts before any trial runs.
"""

import json
import os

import keras_tuner

from models import available_models, model_options
from models.registry import model_entry
from utils.config.resolve import check_value
from utils.config.settings import SETTINGS
from utils.errors import ConfigError

DEFAULT_SPACES_FILE = os.path.join(os.path.dirname(__file__), "search_spaces.json")
MODEL_OPTION_PREFIX = "model_options."
SAMPLINGS = ("linear", "log", "reverse_log")
RANGE_FIELDS = {"min", "max", "step", "sampling"}
# Keys that say where or what a run is, not how it learns: never searched.
NOT_SEARCHABLE = (
    "data_path",
    "val_fraction",
    "small_run",
    "models",
    "model_options",
    "output_dir",
    "run_name",
    "mount_drive",
    "seed",
    "feature_cache_dir",
    "verbose",
    "preset",
    "analysis",
    "robustness_per_class",
    "tensorboard",
    "backup_and_restore",
    "checkpoint",
    "offline_fallback",
    "weights",
)


def load_space(path_or_name, model_name):
    """A checked space: from a JSON file, or the defaults file's space of a family name (None:
    the family of `model_name`; a backbone's family is "pretrained")."""
    if path_or_name is not None and os.path.isfile(path_or_name):
        space = _read_json_object(path_or_name)
    else:
        spaces = _read_json_object(DEFAULT_SPACES_FILE)
        family = path_or_name or model_entry(model_name).search_space
        if family not in spaces:
            raise ConfigError(
                f"Search space {family!r} is neither a file nor a family of {DEFAULT_SPACES_FILE} "
                f"({', '.join(sorted(spaces))}); pass a space file with --space."
            )
        space = spaces[family]
    check_space(space, model_name)
    return space


def _read_json_object(path):
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except OSError as error:
        raise ConfigError(f"Cannot read search space file {path!r}: {error.strerror}.") from error
    except json.JSONDecodeError as error:
        raise ConfigError(f"Search space file {path!r} is not valid JSON: {error}.") from error
    if not isinstance(value, dict):
        raise ConfigError(f"Search space file {path!r} must hold a JSON object of keys to ranges.")
    return value


# --- checking -----------------------------------------------------------------------
def check_space(space, model_name):
    """Raise ConfigError for an empty space, an unknown or unsearchable key, or a range or choice
    whose form, type or values the key does not accept."""
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"A search space must be a non-empty JSON object of keys; got {space!r}.")
    for key, spec in space.items():
        _check_key(key, model_name)
        if not isinstance(spec, dict) or ("values" in spec) == bool(RANGE_FIELDS & set(spec)):
            raise ConfigError(
                f"Search space key {key!r}: {spec!r} is not accepted: expected a range "
                '{"min": ..., "max": ..., "step": ..., "sampling": "linear"|"log"|"reverse_log"} '
                'or a choice {"values": [...]}.'
            )
        if "values" in spec:
            _check_choice(key, spec)
        else:
            _check_range(key, spec)


def _check_key(key, model_name):
    if key.startswith(MODEL_OPTION_PREFIX):
        parts = key.split(".")
        if len(parts) != 3 or parts[1] not in available_models():
            raise ConfigError(
                f"Search space key {key!r} is not accepted: expected model_options.MODEL.OPTION with "
                f"MODEL one of {', '.join(available_models())}."
            )
        if parts[1] != model_name or parts[2] not in model_options(parts[1]):
            raise ConfigError(
                f"Search space key {key!r} is not accepted: the searched model {model_name!r} takes "
                f"the options {model_options(model_name)}."
            )
        return
    if key not in SETTINGS:
        raise ConfigError(f"Search space key {key!r} is not an args key. Known keys: {', '.join(SETTINGS)}.")
    if key in NOT_SEARCHABLE:
        raise ConfigError(
            f"Search space key {key!r} cannot be searched: it says where or what a run is. "
            f"Unsearchable keys: {', '.join(NOT_SEARCHABLE)}."
        )


def _check_values_accepted(key, values):
    if key.startswith(MODEL_OPTION_PREFIX):
        return
    for value in values:
        try:
            check_value(key, value)
        except ConfigError as error:
            raise ConfigError(f"Search space key {key!r}: {error}") from None


def _check_choice(key, spec):
    values = spec["values"]
    if set(spec) != {"values"} or not isinstance(values, list) or not values:
        raise ConfigError(f"Search space key {key!r}: a choice needs only a non-empty list 'values'.")
    if not all(isinstance(v, (bool, int, float, str)) for v in values):
        raise ConfigError(f"Search space key {key!r}: choice values must be numbers, strings or booleans.")
    if len({type(value) for value in values}) > 1:
        raise ConfigError(
            f"Search space key {key!r}: choice values {values!r} mix types; KerasTuner takes one type "
            "per choice (write 0.0, not 0, beside other floats)."
        )
    _check_values_accepted(key, values)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_range(key, spec):
    unknown = set(spec) - RANGE_FIELDS
    low, high, step = spec.get("min"), spec.get("max"), spec.get("step")
    if unknown or not (_is_number(low) and _is_number(high)) or low >= high:
        raise ConfigError(
            f"Search space key {key!r}: {spec!r} is not a range: expected numbers min < max "
            f"(fields {sorted(RANGE_FIELDS)})."
        )
    if step is not None and not (_is_number(step) and step > 0):
        raise ConfigError(f"Search space key {key!r}: step {step!r} must be a positive number.")
    sampling = spec.get("sampling", "linear")
    if sampling not in SAMPLINGS or (sampling != "linear" and low <= 0):
        raise ConfigError(
            f"Search space key {key!r}: sampling {sampling!r} is not accepted: expected one of "
            f"{SAMPLINGS} (log scales need min > 0)."
        )
    if _is_integer_range(key, spec) is None:
        raise ConfigError(
            f"Search space key {key!r}: {spec!r} is a float range but {key!r} takes integers only."
        )
    _check_values_accepted(key, [low, high])


def _is_integer_range(key, spec):
    """True for an integer range, False for a float one, None when the key takes integers only
    but the range has float bounds or step."""
    numbers = [spec["min"], spec["max"], spec.get("step") or 1]
    integral = all(isinstance(value, int) for value in numbers)
    if key.startswith(MODEL_OPTION_PREFIX):
        return integral
    takes_floats = float in SETTINGS[key].types
    if takes_floats:
        return False
    return True if integral else None


# --- KerasTuner and trials --------------------------------------------------------------
def declare_hyperparameters(space):
    """A KerasTuner `HyperParameters` holding one entry per key of a checked space."""
    hp = keras_tuner.HyperParameters()
    for key, spec in space.items():
        if "values" in spec and isinstance(spec["values"][0], bool):  # Choice would make them 0/1
            _declare_boolean(hp, key, spec["values"])
        elif "values" in spec:
            hp.Choice(key, spec["values"])
        elif _is_integer_range(key, spec):
            hp.Int(
                key,
                spec["min"],
                spec["max"],
                step=spec.get("step") or 1,
                sampling=spec.get("sampling", "linear"),
            )
        else:
            hp.Float(
                key, spec["min"], spec["max"], step=spec.get("step"), sampling=spec.get("sampling", "linear")
            )
    return hp


def _declare_boolean(hp, key, values):
    if len(set(values)) == 2:
        hp.Boolean(key, default=values[0])
    else:
        hp.Fixed(key, values[0])


def apply_values(overrides, values):
    """`overrides` with a trial's searched values set (builder options merged into model_options);
    KerasTuner's own entries (`tuner/...`) are left out."""
    result = {**overrides, "model_options": json.loads(json.dumps(overrides.get("model_options", {})))}
    for key, value in values.items():
        if key.startswith("tuner/"):
            continue
        if key.startswith(MODEL_OPTION_PREFIX):
            _, model, option = key.split(".")
            result["model_options"].setdefault(model, {})[option] = value
        else:
            result[key] = value
    if not result["model_options"]:
        del result["model_options"]
    return result
