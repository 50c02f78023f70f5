"""README.md and docs/: short enough to answer, tables equal to what their records give, and every
record and page they cite present."""

import glob
import os
import re

import pytest

from benchmarks import summary
from tests import ROOT

PAGES = [
    "README.md",
    *sorted(os.path.relpath(path, ROOT) for path in glob.glob(os.path.join(ROOT, "docs", "*.md"))),
]


def read(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as handle:
        return handle.read()


def test_readme_answers_on_its_first_screen():
    lines = read("README.md").splitlines()
    assert len(lines) <= 250
    first = "\n".join(lines[:40])
    assert "<!-- table:glance -->" in first and "<!-- /table -->" in first  # the results table
    assert "colab.research.google.com" in first and "make train" in first and "make test" in first


@pytest.mark.parametrize("page", summary.PAGES)
def test_every_table_is_what_the_records_give(page):
    text = read(page)
    assert summary.table_names(text), f"{page} holds no generated table"
    assert summary.with_fresh_tables(text) == text, f"{page}: run python -m benchmarks.summary --write"


def test_the_readme_shows_the_results_and_the_default_run():
    names = summary.table_names(read("README.md"))
    assert names == ["glance", "default_run"]
    assert summary.table_names(read("docs/args.md")) == ["args"]


@pytest.mark.parametrize("page", PAGES)
def test_cited_records_and_pages_exist(page):
    text = read(page)
    records = {
        os.path.basename(path)
        for path in glob.glob(os.path.join(ROOT, "benchmarks", "results", "**"), recursive=True)
    }
    for name in re.findall(r"`([\w.-]+\.json)`", text):
        if not name.startswith(
            ("args", "best_args", "metrics", "analysis", "calibration", "export", "state", "record")
        ):
            assert name in records, f"{page} cites {name}, which no record is"
    for link in re.findall(r"\]\(([^)#:]+)\)", text):
        assert os.path.exists(os.path.join(ROOT, os.path.dirname(page), link)), f"{page} links {link}"


def test_the_notebook_states_what_its_default_run_gave():
    import json

    from benchmarks.summary import DEFAULT_RUN, minutes, percent, read_record

    record = read_record(DEFAULT_RUN)
    with open(os.path.join(ROOT, "image_classification_main.ipynb"), encoding="utf-8") as handle:
        cells = json.load(handle)["cells"]
    prose = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    assert f"took {record['minutes']:.1f} minutes from start to end" in prose
    fast, lite0 = record["results"]["fast_cnn"], record["results"]["efficientnet_lite0"]
    for value in (
        fast["test_accuracy"],
        fast["test_accuracy_tta"],
        lite0["test_accuracy"],
        lite0["test_accuracy_tta"],
    ):
        assert percent(value) in prose
    assert f"trained for {minutes(fast['train_seconds'])[:-4]} minutes" in prose
