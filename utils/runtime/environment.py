"""Session preparation: Google Drive on Colab, seeding, the precision policy by hardware, and a
one-line description of the runtime."""

import logging
import os
import platform

import keras

from utils.runtime.colab import in_colab
from utils.runtime.distribution import configure_cpu_devices

DRIVE_MOUNT = "/content/drive"
DRIVE_FOLDER = os.path.join(DRIVE_MOUNT, "MyDrive")
DRIVE_DATA_FOLDER = os.path.join(DRIVE_FOLDER, "cifar10_data")


def _on_drive(mount_drive):
    """Whether run folders and the downloaded data go to Google Drive (mounted on first use)."""
    if not (mount_drive and in_colab()):
        return False
    if not os.path.isdir(DRIVE_FOLDER):
        from google.colab import drive  # available on Colab only

        drive.mount(DRIVE_MOUNT)
    return True


def output_root(output_dir, mount_drive):
    """Where run folders go: `output_dir` on Google Drive when `mount_drive` on Colab, else here."""
    return os.path.join(DRIVE_FOLDER, output_dir) if _on_drive(mount_drive) else output_dir


def download_folder(mount_drive):
    """Where a downloaded CIFAR-10 archive is kept: on Drive when asked for on Colab (a new machine
    after a disconnect finds it there), else None (Keras's cache, ~/.keras)."""
    return DRIVE_DATA_FOLDER if _on_drive(mount_drive) else None


def flush_drive(mount_drive):
    """Colab with Drive: write pending files out before the runtime can disconnect."""
    if mount_drive and in_colab():
        from google.colab import drive

        drive.flush_and_unmount()


def set_seed(seed):
    """Seed Python, NumPy and the backend in one place."""
    keras.utils.set_random_seed(seed)


def _cpu_has_bf16():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _gpu_compute_capability():
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        if "compute_capability" in details:
            return details["compute_capability"]
    return None


def choose_precision(requested="auto", cpu_float32=False):
    """The precision policy for this hardware and model, unless `requested` names one.

    mixed_float16 on GPUs of compute capability 7.0+; on CPUs with AVX512-BF16 or AMX,
    mixed_bfloat16 (about 2x faster than float32 for our convolutional networks on the 2-core
    machine) unless `cpu_float32` (a model measured faster in float32 there: its registry entry);
    else float32.
    """
    if requested != "auto":
        return requested
    capability = _gpu_compute_capability()
    if capability is not None:
        return "mixed_float16" if capability >= (7, 0) else "float32"
    return "mixed_bfloat16" if _cpu_has_bf16() and not cpu_float32 else "float32"


def choose_jit_compile(requested="auto"):
    """Whether `fit` compiles train steps with XLA, unless `requested` says.

    "auto": off on CPUs, where XLA measured slower than without it under the automatic
    mixed_bfloat16 policy (benchmarks/speed/throughput.py); Keras's own "auto" on GPUs.
    """
    if requested != "auto":
        return requested
    return "auto" if _gpu_compute_capability() is not None else False


def describe_runtime():
    """One line: Python, TensorFlow and Keras versions, the accelerator and the default precision."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    accelerator = (
        ", ".join(names) if names else f"none (CPU{', bfloat16 capable' if _cpu_has_bf16() else ''})"
    )
    return (
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}; "
        f"accelerator: {accelerator}; precision policy (auto): {choose_precision('auto')}"
    )


def prepare_session(seed, precision="auto", cpu_devices=None):
    """Seed every generator and set the session's precision policy; returns the policy name.
    (`utils.steps.build_for_run` builds each model under its own choice.) TensorFlow's Python
    warnings (retracing notices of predictions at a new batch size) are quieted to errors."""
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    configure_cpu_devices(cpu_devices)
    set_seed(seed)
    policy = choose_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy
