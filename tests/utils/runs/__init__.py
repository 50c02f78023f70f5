"""Tests of utils/runs/."""
