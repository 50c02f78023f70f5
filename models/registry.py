"""The model registry: a name -> builder mapping filled by the `register_model` decorator."""

import inspect

from utils.errors import ConfigError, UnknownModelError

_BUILDERS = {}


def register_model(name):
    """Register a builder `fn(input_shape, num_classes, **options) -> keras.Model` as `name`.

    Raises:
        ValueError: when `name` is registered already.
    """

    def decorator(builder):
        if name in _BUILDERS:
            raise ValueError(f"A model named {name!r} is registered already.")
        _BUILDERS[name] = builder
        return builder

    return decorator


def available_models():
    """Registered model names, sorted."""
    return sorted(_BUILDERS)


def model_options(name):
    """The keyword options a builder accepts beyond input_shape and num_classes."""
    parameters = inspect.signature(_builder(name)).parameters
    return [key for key in parameters if key not in ("input_shape", "num_classes")]


def _builder(name):
    try:
        return _BUILDERS[name]
    except KeyError:
        raise UnknownModelError(
            f"Unknown model {name!r}. Registered models: {', '.join(available_models())}."
        ) from None


def build_model(name, input_shape=(32, 32, 3), num_classes=10, **options):
    """Build the registered model `name` with the builder's keyword `options`."""
    builder = _builder(name)
    unknown = sorted(set(options) - set(model_options(name)))
    if unknown:
        raise ConfigError(f"Model {name!r} has no option(s) {unknown}; it accepts {model_options(name)}.")
    return builder(input_shape=input_shape, num_classes=num_classes, **options)
