"""Tests of utils/runtime/."""
