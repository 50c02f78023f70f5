"""The benchmark scripts in their tiny modes, and the committed records."""
