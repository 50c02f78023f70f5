"""Robustness: kill-and-resume, export parity."""
