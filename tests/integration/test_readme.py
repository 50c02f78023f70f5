import os

from tests import ROOT
from utils.config.settings import describe_args_markdown


def test_readme_args_reference_matches_the_defaults():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        assert describe_args_markdown() in handle.read()
