"""Pipeline steps shared by the notebook, train.py and the benchmarks."""
