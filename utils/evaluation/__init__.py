"""Evaluation: the test set, the report across runs and the accuracy-time frontier."""
