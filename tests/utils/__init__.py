"""Tests of utils/, one folder per stage package."""
