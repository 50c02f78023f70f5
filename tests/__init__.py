"""The test suite; its folders mirror models/, utils/ and benchmarks/, integration/ holds the
whole-pipeline tests. ROOT is the repository's root, wherever a test lives."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
