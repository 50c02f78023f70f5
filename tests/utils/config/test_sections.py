"""A stage's own settings: only its keys, read-only, replaced by copy."""

import copy

import pytest

from utils.config.resolve import resolve_args
from utils.config.sections import section
from utils.config.settings import SECTIONS


def test_a_section_holds_its_stages_keys_and_no_other():
    args = resolve_args({"learning_rate": 0.2})
    optimizer = section(args, "optimizer")
    assert optimizer.as_dict() == {key: args[key] for key in SECTIONS["optimizer"]}
    assert optimizer.learning_rate == 0.2
    with pytest.raises(AttributeError, match="'epochs' is not among these settings: optimizer, "):
        optimizer.epochs  # noqa: B018  (a training key, not the optimizer's)
    both = section(args, "optimizer", "training")
    assert set(both.as_dict()) == set(SECTIONS["optimizer"]) | set(SECTIONS["training"])


def test_a_section_is_read_only_and_replaced_by_a_checked_copy():
    callbacks = section(resolve_args(), "callbacks")
    with pytest.raises(AttributeError, match="read-only"):
        callbacks.checkpoint = False
    quiet = callbacks.replace(checkpoint=False)
    assert quiet.checkpoint is False and callbacks.checkpoint is True
    with pytest.raises(AttributeError, match=r"\['epochs'\] are not among these settings"):
        callbacks.replace(epochs=3)
    assert copy.deepcopy(quiet) == quiet


def test_an_unknown_stage_is_refused_with_the_known_ones():
    with pytest.raises(
        ValueError, match="Unknown stage\\(s\\) \\['optimiser'\\]; stages: data, augmentation"
    ):
        section(resolve_args(), "optimiser")
