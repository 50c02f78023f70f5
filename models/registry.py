"""The model registry: name -> entry (builder and what is known of the model), filled by the
`register_model` decorator; the one place that knows each model's family, recipe and preferences."""

import dataclasses
import inspect
from collections.abc import Callable

from utils.config.settings import BUDGETS
from utils.errors import ConfigError, UnknownModelError

FROM_SCRATCH = "from_scratch"
PRETRAINED = "pretrained"


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What a recipe measured: test accuracy (%; None where it cannot be measured here) and training
    minutes on `machine`, in `record`."""

    accuracy: float | None
    minutes: float
    machine: str
    record: str


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Args a model trains with by default (`args["model_args"]` null) and the evidence for them."""

    args: dict
    evidence: Evidence


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A registered model.

    Attributes:
        builder: `fn(input_shape, num_classes, **options) -> keras.Model`.
        family: FROM_SCRATCH or PRETRAINED (an ImageNet backbone with a new head).
        search_space: its family in utils/tuning/search_spaces.json.
        cpu_float32: trains faster in float32 than in mixed_bfloat16 on CPUs with bf16 support.
        recipes: its measured recipe per budget (BUDGETS); a budget it lacks trains on the run's args.
    """

    name: str
    builder: Callable
    family: str
    search_space: str
    cpu_float32: bool = False
    recipes: dict = dataclasses.field(default_factory=dict)


_ENTRIES = {}


def register_model(name, *, family=FROM_SCRATCH, search_space=None, cpu_float32=False, recipes=None):
    """Register a builder `fn(input_shape, num_classes, **options) -> keras.Model` as `name`, with
    its family, search-space family (default: its name), CPU precision preference and recipes
    ({budget: Recipe}).

    Raises:
        ValueError: when `name` is registered already, or `family` or a budget is not known.
    """
    if family not in (FROM_SCRATCH, PRETRAINED):
        raise ValueError(f"family {family!r} of {name!r} is neither {FROM_SCRATCH!r} nor {PRETRAINED!r}.")
    if set(recipes or {}) - set(BUDGETS):
        raise ValueError(f"recipes of {name!r} name budgets {sorted(recipes)}; known: {BUDGETS}.")

    def decorator(builder):
        if name in _ENTRIES:
            raise ValueError(f"A model named {name!r} is registered already.")
        _ENTRIES[name] = ModelEntry(
            name, builder, family, search_space or name, cpu_float32, dict(recipes or {})
        )
        return builder

    return decorator


def available_models():
    """Registered model names, sorted."""
    return sorted(_ENTRIES)


def model_entry(name):
    """The registry entry of `name`.

    Raises:
        UnknownModelError: listing the registered names.
    """
    try:
        return _ENTRIES[name]
    except KeyError:
        raise UnknownModelError(
            f"Unknown model {name!r}. Registered models: {', '.join(available_models())}."
        ) from None


def is_pretrained_name(name):
    """Whether registered model `name` is an ImageNet backbone with a new head."""
    return model_entry(name).family == PRETRAINED


def model_recipes(budget="short"):
    """{name: recipe args} of every model that has a measured recipe for `budget`."""
    return {
        name: dict(entry.recipes[budget].args) for name, entry in _ENTRIES.items() if budget in entry.recipes
    }


def model_options(name):
    """The keyword options a builder accepts beyond input_shape and num_classes."""
    parameters = inspect.signature(model_entry(name).builder).parameters
    return [key for key in parameters if key not in ("input_shape", "num_classes")]


def build_model(name, input_shape=(32, 32, 3), num_classes=10, **options):
    """Build the registered model `name` with the builder's keyword `options`."""
    builder = model_entry(name).builder
    unknown = sorted(set(options) - set(model_options(name)))
    if unknown:
        raise ConfigError(f"Model {name!r} has no option(s) {unknown}; it accepts {model_options(name)}.")
    return builder(input_shape=input_shape, num_classes=num_classes, **options)
