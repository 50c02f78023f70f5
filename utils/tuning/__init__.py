"""Hyperparameter search: the search, its spaces and its report."""
