"""Benchmark scripts; importing this package sets TensorFlow's flags first (see utils/__init__.py)."""

import utils  # noqa: F401
