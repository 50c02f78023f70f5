"""benchmarks/speed/onednn_kernels.py: oneDNN's verbose lines summed per primitive and implementation."""

import pytest

from benchmarks.speed.onednn_kernels import kernel_rows, parse_verbose

LINES = [
    "onednn_verbose,v1,info,oneDNN v3.7.0",
    "onednn_verbose,v1,primitive,create:cache_miss,cpu,convolution,brg_conv_fwd:avx10_1_512_amx,"
    "forward_training,src:bf16,,alg:convolution_direct,mb2000_ic3oc24,0.5",
    "onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx10_1_512_amx,forward_training,"
    "src:bf16::blocked:acdb::f0 wei:bf16,,alg:convolution_direct,mb2000_ic3oc24_ih32oh31,12.5",
    "onednn_verbose,1796667238.5,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx10_1_512_amx,"
    "forward_training,src:bf16,,alg:convolution_direct,mb2000_ic24oc64,7.5",
    "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32 dst:bf16,,,2000x3x32x32,1.0",
    "some other line the program printed",
]


def test_executions_are_summed_per_primitive_and_implementation():
    totals = parse_verbose(LINES)
    assert dict(totals) == {
        ("convolution", "brg_conv_fwd:avx10_1_512_amx"): [20.0, 2],
        ("reorder", "jit:uni"): [1.0, 1],
    }


def test_rows_give_time_per_step_and_share_of_the_wall_time():
    rows = kernel_rows(parse_verbose(LINES), steps=2, wall_ms_per_step=20.0)
    assert rows[0] == {
        "primitive": "convolution",
        "implementation": "brg_conv_fwd:avx10_1_512_amx",
        "ms_per_step": 10.0,
        "share_of_wall": 0.5,
        "calls_per_step": 1.0,
    }
    assert rows[1]["ms_per_step"] == pytest.approx(0.5)


@pytest.mark.slow  # trains two tiny steps in a child process
def test_tiny_run_tabulates_the_convolutions_and_the_time_outside_onednn(tiny_archive, tmp_path):
    from benchmarks.speed import onednn_kernels

    out = tmp_path / "kernels.json"
    record = onednn_kernels.main(
        [
            "--data",
            tiny_archive,
            "--model",
            "fast_cnn",
            "--preset",
            "fast",
            "--tiny",
            "--set",
            "batch_size=32",
        ]
        + ["--out", str(out)]
    )
    primitives = {row["primitive"] for row in record["kernels"]}
    assert "convolution" in primitives  # TensorFlow's convolutions run in oneDNN on x86 CPUs
    assert 0 < record["outside_onednn_share"] < 1 and record["ms_per_step_wall"] > 0
    assert record["precision"] in ("float32", "mixed_bfloat16")  # the policy the model ran under
    assert (tmp_path / "kernels.md").read_text().startswith("oneDNN kernels of `fast_cnn` (fast)")
