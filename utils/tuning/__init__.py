"""Hyperparameter search: the search, its spaces and its report."""

TUNERS = ("hyperband", "bayesian", "random")  # KerasTuner's oracles, by tune.py's --tuner name
