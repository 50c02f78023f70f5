"""Tests of utils/tuning/."""
