"""Tests of utils/data/."""
