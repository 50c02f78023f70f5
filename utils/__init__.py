"""Pipeline steps shared by the notebook, train.py and the benchmarks.

Importing this package turns TensorFlow's oneDNN kernels on (`TF_ENABLE_ONEDNN_OPTS`, read once
when TensorFlow loads, so every entry point imports this package before TensorFlow). TensorFlow
turns them on by itself only on CPUs with AVX-512 and the like; on a 2-core AVX2 CPU they made
fast_cnn's training step 3.3x faster (benchmarks/results/profile_step/profile_fast_cnn_avx2_onednn_*.md).
`TF_ENABLE_ONEDNN_OPTS=0` in the environment keeps them off.

It also quiets TensorFlow's C++ start-up logs (oneDNN and CPU-instruction notices, "no CUDA
driver" on a CPU machine), which no user can act on; `TF_CPP_MIN_LOG_LEVEL=0` shows them again.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
