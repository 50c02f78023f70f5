"""Whole-pipeline tests: the command lines, the notebook, several processes, every precision and XLA."""
