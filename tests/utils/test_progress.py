import re

import pytest

from utils.progress import duration, timed_step


@pytest.mark.parametrize(
    "seconds, words", [(0.4, "0 s"), (42.4, "42 s"), (185, "3 min 05 s"), (3720, "1 h 02 min")]
)
def test_duration_in_words(seconds, words):
    assert duration(seconds) == words


def test_timed_step_says_what_starts_and_how_long_it_took(capsys):
    with timed_step("Testing fast_cnn") as notes:
        notes.append("robustness 3 s")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Testing fast_cnn ..."
    assert re.fullmatch(r"Testing fast_cnn: done in \d+ s \(robustness 3 s\)", lines[1])
