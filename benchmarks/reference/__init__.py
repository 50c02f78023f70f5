"""References: the PyTorch airbench94 reference, our recipe against it, Lite0 cross-check."""
