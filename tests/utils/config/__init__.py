"""Tests of utils/config/."""
