"""Tests of utils/analysis/."""
