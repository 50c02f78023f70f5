"""A stage's own settings: the keys of its sections of `args`, read-only, by attribute."""

from utils.config.settings import STAGE_OF


class Section:
    """Read-only settings of one or more stages, one attribute per key: what a stage is handed
    instead of the whole `args`, so its signature shows which settings it can read."""

    def __init__(self, values):
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, key):
        if key == "_values":  # not set yet (a copy being made): no recursion
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"{key!r} is not among these settings: {', '.join(self._values)}.") from None

    def __setattr__(self, key, value):
        raise AttributeError("Settings are read-only; use .replace(key=value).")

    def __repr__(self):
        return f"Section({self._values})"

    def __eq__(self, other):
        return isinstance(other, Section) and self._values == other._values

    def replace(self, **changes):
        """A copy with `changes` (keys it holds already)."""
        unknown = sorted(set(changes) - set(self._values))
        if unknown:
            raise AttributeError(f"{unknown} are not among these settings: {', '.join(self._values)}.")
        return Section({**self._values, **changes})

    def as_dict(self):
        return dict(self._values)


def section(args, *stages):
    """The settings of `stages` (keys of `SECTIONS`) out of `args`, as a read-only `Section`.

    Raises:
        ValueError: for a stage `SECTIONS` does not have.
    """
    unknown = sorted(set(stages) - set(STAGE_OF.values()))
    if unknown:
        raise ValueError(
            f"Unknown stage(s) {unknown}; stages: {', '.join(dict.fromkeys(STAGE_OF.values()))}."
        )
    return Section({key: value for key, value in args.items() if STAGE_OF.get(key) in stages})
