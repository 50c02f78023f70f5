"""Tests of models/pretrained/."""
