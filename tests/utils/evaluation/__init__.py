"""Tests of utils/evaluation/."""
