"""The layout's rules, checked on the source: args stop at the facade, no import-path hacks, layer
names known to models/parts.py alone."""

import ast
import glob
import os

from tests import ROOT


def _sources(*patterns):
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(ROOT, pattern), recursive=True)):
            with open(path, encoding="utf-8") as handle:
                yield os.path.relpath(path, ROOT), ast.parse(handle.read())


def test_no_function_below_the_facade_takes_the_whole_args():
    """Only utils/steps.py (the facade) and utils/config/ take `args`; every other function is
    handed its values by name or its own section."""
    takers = []
    for path, tree in _sources("utils/**/*.py", "models/**/*.py"):
        if path == os.path.join("utils", "steps.py") or path.startswith(os.path.join("utils", "config")):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if "args" in [argument.arg for argument in node.args.args + node.args.kwonlyargs]:
                    takers.append(f"{path}:{node.name}")
    assert takers == []


def test_nothing_edits_the_import_path():
    hacks = []
    for path, tree in _sources("*.py", "utils/**/*.py", "models/**/*.py", "benchmarks/**/*.py", ".ci/*.py"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "insert":
                if isinstance(node.value, ast.Attribute) and node.value.attr == "path":
                    hacks.append(path)
    assert hacks == []


def test_layer_names_are_read_in_models_parts_only():
    """`get_layer("name")` with a literal name couples a package to a builder's naming; outside
    models/ the parts of a model are reached through models/parts.py."""
    readers = []
    for path, tree in _sources("utils/**/*.py", "benchmarks/**/*.py", "*.py"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get_layer":
                if node.args and isinstance(node.args[0], ast.Constant):
                    readers.append(f"{path}:{node.lineno}")
    assert readers == []
