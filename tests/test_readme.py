import os

from utils.config.settings import describe_args_markdown

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_args_reference_matches_the_defaults():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        assert describe_args_markdown() in handle.read()
