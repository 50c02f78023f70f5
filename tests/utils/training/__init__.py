"""Tests of utils/training/."""
