"""Reference run: the published airbench94 recipe in PyTorch, on this machine and data copy.

Tells how much of the gap between our `fast_cnn` (about 90%) and the paper's 94.01% belongs
to our Keras code, and how much to the machine and the data (the shared CIFAR-10 copy is
re-decoded from JPEG; this CPU trains in bfloat16). The recipe's settings are the
published ones (Jordan, arXiv 2404.00498, airbench94: 9.9 epochs, batch 1024, lr 11.5 and
weight decay 0.0153 per 1024 examples, momentum 0.85 Nesterov, BatchNorm biases at 64x
rate, label smoothing 0.2, whitening bias trained 3 epochs, Lookahead from epoch 3,
alternating flip, 2-pixel reflect-padded crops); the code is ours.

Torch is not a dependency of the project, so this runs in two steps, each in its own
environment (any Python with torch and numpy for the second):

    .venv/bin/python -m benchmarks.reference.reference_airbench_torch data --data PATH --out /tmp/cifar10.npz
    /path/to/torch/python -m benchmarks.reference.reference_airbench_torch train --inputs /tmp/cifar10.npz \\
        --seed 0 --out benchmarks/results/reference_airbench_torch/airbench94_reference_torch.json

Training runs under bfloat16 autocast (`--precision float32` to turn it off); the record
has the project's common top-level keys, with flip TTA as `test_accuracy_tta` and the
paper's mirror + translate TTA as `test_accuracy_tta_translate`.
"""

import argparse
import json
import math
import os
import platform
import time

import numpy as np

from benchmarks.common import time_to_accuracy, write_record  # noqa: E402

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
RECIPE = {
    "epochs": 9.9,
    "batch_size": 1024,
    "lr_per_1024": 11.5,
    "weight_decay_per_1024": 0.0153,
    "momentum": 0.85,
    "bias_lr_multiplier": 64.0,
    "label_smoothing": 0.2,
    "whiten_bias_epochs": 3,
    "lookahead_start_epoch": 3,
    "lookahead_every": 5,
    "batchnorm_momentum": 0.6,
    "widths": (64, 256, 256),
    "logit_scale": 1 / 9,
    "translate": 2,
}


def data_step(data_path, out):
    """Save the CIFAR-10 copy's images and labels as uint8/int64 arrays in `out` (.npz)."""
    from utils.data import cifar10 as cifar

    train, test = cifar.load_cifar10(data_path)
    np.savez(
        out,
        train_images=train.images,
        train_labels=train.labels,
        test_images=test.images,
        test_labels=test.labels,
    )


def train_step(inputs_path, seed, precision, out, epochs=RECIPE["epochs"]):
    """Train the reference recipe once for `epochs` (the recipe's 9.9 unless shortened) and write
    its record to `out` (the timing leaves out the whitening fit and the test evaluations)."""
    import torch

    torch.manual_seed(seed)
    saved = np.load(inputs_path)
    train_images, test_images = (_normalized(torch, saved[key]) for key in ("train_images", "test_images"))
    train_labels, test_labels = (
        torch.from_numpy(saved[key]).long() for key in ("train_labels", "test_labels")
    )
    net = _network(torch)
    _fit_whitening(torch, net[0], train_images[:5000])
    autocast = _autocast(torch, precision)
    recipe = {**RECIPE, "epochs": epochs}
    epochs = _train(torch, net, recipe, (train_images, train_labels), (test_images, test_labels), autocast)
    accuracy = {
        level: _test_accuracy(torch, net, test_images, test_labels, autocast, level) for level in range(3)
    }
    record = _record(torch, seed, precision, recipe, epochs, accuracy)
    record = write_record(out, record)
    print(json.dumps({key: record[key] for key in ("test_accuracy", "test_accuracy_tta", "train_seconds")}))


def _normalized(torch, images):
    """uint8 (N, H, W, C) -> normalized float32 (N, C, H, W)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR_STD).view(1, 3, 1, 1)


def _network(torch):
    """Frozen 2x2 whitening conv (trainable bias), GELU, three conv groups, max-pool, scaled linear."""
    from torch import nn

    class Conv(nn.Conv2d):
        """3x3 'same' conv whose first in_channels filters start as identities."""

        def __init__(self, channels_in, channels_out, kernel_size=3, padding="same", bias=False):
            super().__init__(channels_in, channels_out, kernel_size, padding=padding, bias=bias)

        def reset_parameters(self):
            super().reset_parameters()
            if self.bias is not None:
                self.bias.data.zero_()
            nn.init.dirac_(self.weight.data[: self.weight.size(1)])

    def batchnorm(channels):
        norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=1 - RECIPE["batchnorm_momentum"])
        norm.weight.requires_grad = False
        return norm

    def group(channels_in, channels_out):
        return nn.Sequential(
            Conv(channels_in, channels_out),
            nn.MaxPool2d(2),
            batchnorm(channels_out),
            nn.GELU(),
            Conv(channels_out, channels_out),
            batchnorm(channels_out),
            nn.GELU(),
        )

    class Scale(nn.Module):
        def forward(self, x):
            return x * RECIPE["logit_scale"]

    first, second, third = RECIPE["widths"]
    net = nn.Sequential(
        Conv(3, 24, kernel_size=2, padding=0, bias=True),
        nn.GELU(),
        group(24, first),
        group(first, second),
        group(second, third),
        nn.MaxPool2d(3),
        nn.Flatten(),
        nn.Linear(third, 10, bias=False),
        Scale(),
    )
    net[0].weight.requires_grad = False
    return net.to(memory_format=torch.channels_last)


def _fit_whitening(torch, conv, images, epsilon=5e-4):
    """Eigenvector filters (and their negatives) of the uncentred 2x2 patch covariance."""
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1).transpose(1, 3).reshape(-1, 12)
    eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))
    eigenvalues, eigenvectors = (
        eigenvalues.flip(0).view(-1, 1, 1, 1),
        eigenvectors.T.reshape(12, 3, 2, 2).flip(0),
    )
    filters = eigenvectors / torch.sqrt(eigenvalues + epsilon)
    conv.weight.data[:] = torch.cat((filters, -filters))


def _autocast(torch, precision):
    if precision == "bfloat16":
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return lambda: torch.autocast("cpu", enabled=False)


def _optimizer(torch, net, total_steps):
    """Nesterov SGD with the recipe's decoupled lr and decay; warmup 0.2 -> 1, decay -> 0.07."""
    batch, momentum = RECIPE["batch_size"], RECIPE["momentum"]
    steps_scale = 1024 * (1 + 1 / (1 - momentum))
    lr = RECIPE["lr_per_1024"] / steps_scale
    decay = RECIPE["weight_decay_per_1024"] * batch / steps_scale
    bias_lr = lr * RECIPE["bias_lr_multiplier"]
    norm_biases = [m.bias for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    norm_ids = {id(p) for p in norm_biases}
    others = [p for p in net.parameters() if p.requires_grad and id(p) not in norm_ids]
    optimizer = torch.optim.SGD(
        [
            {"params": norm_biases, "lr": bias_lr, "weight_decay": decay / bias_lr},
            {"params": others, "lr": lr, "weight_decay": decay / lr},
        ],
        momentum=momentum,
        nesterov=True,
    )
    factors = np.interp(
        np.arange(total_steps + 1), [0, int(0.23 * total_steps), total_steps], [0.2, 1.0, 0.07]
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factors[min(step, total_steps)])
    return optimizer, schedule


def _epoch_images(torch, padded, epoch):
    """Every image cropped at a random offset of up to 2 pixels; all mirrored on odd epochs."""
    reach = RECIPE["translate"]
    size = padded.shape[-1] - 2 * reach
    shifts = torch.randint(-reach, reach + 1, (len(padded), 2))
    images = torch.empty(len(padded), padded.shape[1], size, size)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            chosen = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            top, left = reach + dy, reach + dx
            images[chosen] = padded[chosen, :, top : top + size, left : left + size]
    return images.flip(-1) if epoch % 2 == 1 else images


def _train(torch, net, recipe, train, test, autocast):
    """The recipe's training loop; returns per-epoch records (seconds, last-batch loss, test accuracy)."""
    import torch.nn.functional as F

    (images, labels), (test_images, test_labels) = train, test
    batch = min(RECIPE["batch_size"], len(images))  # tiny test data: one step an epoch
    steps_per_epoch = len(images) // batch
    total_steps = math.ceil(steps_per_epoch * recipe["epochs"])
    optimizer, schedule = _optimizer(torch, net, total_steps)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=RECIPE["label_smoothing"], reduction="none")
    mirrored = torch.rand(len(images)) < 0.5
    start_images = torch.where(mirrored.view(-1, 1, 1, 1), images.flip(-1), images)
    padded = F.pad(start_images, (RECIPE["translate"],) * 4, "reflect")
    lookahead, step, epochs, start = None, 0, [], time.perf_counter()
    for epoch in range(math.ceil(recipe["epochs"])):
        net[0].bias.requires_grad = epoch < RECIPE["whiten_bias_epochs"]
        epoch_images, order = _epoch_images(torch, padded, epoch), torch.randperm(len(images))
        for index in range(steps_per_epoch):
            chosen = order[index * batch : (index + 1) * batch]
            with autocast():
                outputs = net(epoch_images[chosen].contiguous(memory_format=torch.channels_last))
            loss = loss_fn(outputs.float(), labels[chosen]).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if epoch >= RECIPE["lookahead_start_epoch"] and step % RECIPE["lookahead_every"] == 0:
                lookahead = _lookahead(
                    net, lookahead, 0.95 ** RECIPE["lookahead_every"] * (step / total_steps) ** 3
                )
            if step >= total_steps:
                break
        if lookahead is not None:
            _lookahead(net, lookahead, 1.0)
        seconds = time.perf_counter() - start
        accuracy = _test_accuracy(torch, net, test_images, test_labels, autocast, level=0)
        epochs.append(
            {"epoch": epoch, "seconds": seconds, "train_loss": loss.item() / batch, "test_accuracy": accuracy}
        )
        print(epochs[-1], flush=True)
        start = time.perf_counter()
    return epochs


def _lookahead(net, slow, alpha):
    """Pull the weights (BatchNorm statistics included) towards a slow copy; None starts one."""
    state = net.state_dict()
    if slow is None:
        return {key: value.clone() for key, value in state.items()}
    for key, value in state.items():
        if value.dtype.is_floating_point:
            slow[key].lerp_(value, 1 - alpha)
            value.copy_(slow[key])
    return slow


def _test_accuracy(torch, net, images, labels, autocast, level):
    """Accuracy with TTA level 0 (none), 1 (mirror) or 2 (mirror, and 1-pixel shifts both ways)."""
    import torch.nn.functional as F

    def view_logits(x):
        """The net's logits, averaged with its mirror image's from level 1 on."""
        return 0.5 * net(x).float() + 0.5 * net(x.flip(-1)).float() if level else net(x).float()

    net.eval()
    outputs = []
    with torch.no_grad(), autocast():
        for part in images.split(2000):
            x = part.contiguous(memory_format=torch.channels_last)
            logits = view_logits(x)
            if level == 2:
                padded = F.pad(x, (1,) * 4, "reflect")
                logits = (
                    0.5 * logits
                    + 0.25 * view_logits(padded[:, :, :32, :32])
                    + 0.25 * view_logits(padded[:, :, 2:, 2:])
                )
            outputs.append(logits)
    net.train()
    return float((torch.cat(outputs).argmax(1) == labels).float().mean())


def _record(torch, seed, precision, recipe, epochs, accuracy):
    """The record, timed without the per-epoch test evaluations."""
    return {
        "model": "airbench94_reference_torch",
        "preset": "airbench94",
        "seeds": [seed],
        "test_accuracy": accuracy[0],
        "test_accuracy_tta": accuracy[1],
        "test_accuracy_tta_translate": accuracy[2],
        "train_seconds": sum(epoch["seconds"] for epoch in epochs),
        "time_to_accuracy": time_to_accuracy(epochs, start_seconds=0.0),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
        },
        "precision": precision,
        "recipe": recipe,
        "epochs": epochs,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("data", "train"))
    parser.add_argument("--data", help="CIFAR-10 archive or folder (data step)")
    parser.add_argument("--inputs", help="the data step's .npz (train step)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--epochs", type=float, default=RECIPE["epochs"], help="shorten the recipe")
    parser.add_argument("--out", required=True)
    options = parser.parse_args(argv)
    if options.step == "data":
        data_step(options.data, options.out)
    else:
        train_step(options.inputs, options.seed, options.precision, options.out, options.epochs)


if __name__ == "__main__":
    main()
