"""Accuracy: time to accuracy, the budget frontier, comparisons, linear probes."""
