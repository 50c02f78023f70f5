"""Speed: training and inference throughput, step profiles, memory, scaling, the GPU check."""
