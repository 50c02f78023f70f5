"""benchmarks/robustness/: kills of train.py and what survives them."""

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark scripts in their tiny mode


def test_kill_resume_survives_kills_of_the_training_process(tiny_archive, tmp_path):
    from benchmarks.robustness import kill_resume

    record = kill_resume.kill_and_check(
        tiny_archive, str(tmp_path), kills=3, epochs=3, delays=(3.0, 9.0), seed=1
    )
    failed = [name for name, passed in record["checks"].items() if not passed]
    assert record["kills"] >= 1 and not failed, (failed, record["events"], record["error_tail"])
    assert record["failures"] == 0
    assert record["history_rows_checked"] == 3
