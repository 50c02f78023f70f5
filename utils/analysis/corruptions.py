"""How robust a model is: common image corruptions at graded severities, computed in the project.

The severities follow levels 1, 3 and 5 of CIFAR-10-C (Hendrycks and Dietterich, ICLR 2019).
Every corruption maps uint8 images (N, H, W, 3) to uint8 images of the same shape.
"""

import io

import numpy as np
from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
from PIL import Image
from scipy.ndimage import gaussian_filter

SEVERITIES = (1, 2, 3)


def _to_uint8(images):
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def gaussian_noise(images, severity, seed):
    """Additive noise of standard deviation 0.04, 0.08 or 0.10 of the value range."""
    sigma = (0.04, 0.08, 0.10)[severity - 1] * 255
    noise = np.random.default_rng(seed).normal(0.0, sigma, images.shape)
    return _to_uint8(images + noise)


def gaussian_blur(images, severity, seed):
    """Blur with a Gaussian of 0.4, 0.7 or 1.0 pixels standard deviation."""
    sigma = (0.4, 0.7, 1.0)[severity - 1]
    return _to_uint8(gaussian_filter(images.astype(np.float32), sigma=(0, sigma, sigma, 0)))


def contrast(images, severity, seed):
    """Pull every pixel towards its image's mean, keeping 75%, 40% or 15% of the contrast."""
    kept = (0.75, 0.4, 0.15)[severity - 1]
    images = images.astype(np.float32)
    means = images.mean(axis=(1, 2, 3), keepdims=True)
    return _to_uint8((images - means) * kept + means)


def brightness(images, severity, seed):
    """Raise the HSV value channel by 0.05, 0.15 or 0.30."""
    lift = (0.05, 0.15, 0.30)[severity - 1]
    hsv = rgb_to_hsv(images.astype(np.float32) / 255)
    hsv[..., 2] = np.clip(hsv[..., 2] + lift, 0, 1)
    return _to_uint8(hsv_to_rgb(hsv) * 255)


def jpeg(images, severity, seed):
    """Re-compress each image as JPEG of quality 80, 58 or 40."""
    quality = (80, 58, 40)[severity - 1]
    out = np.empty_like(images)
    for index, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        out[index] = np.asarray(Image.open(buffer).convert("RGB"))
    return out


CORRUPTIONS = {
    "gaussian_noise": gaussian_noise,
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "brightness": brightness,
    "jpeg": jpeg,
}


def corrupt(images, name, severity, seed=0):
    """`images` (uint8) under corruption `name` at `severity` (1 mild to 3 strong)."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} is not one of {SEVERITIES}")
    return CORRUPTIONS[name](np.asarray(images, np.uint8), severity, seed)


def corruption_accuracies(classify, images, labels, seed=0):
    """Accuracy of `classify` (uint8 images -> predicted classes) on the clean images and under
    every corruption and severity.

    Returns:
        {"clean": accuracy, "corruptions": {name: [accuracy per severity]}, "mean": mean of all
        corrupted accuracies}.
    """
    accuracies = {}
    for name in CORRUPTIONS:
        accuracies[name] = [
            float(np.mean(classify(corrupt(images, name, severity, seed)) == labels))
            for severity in SEVERITIES
        ]
    every = [value for values in accuracies.values() for value in values]
    return {
        "clean": float(np.mean(classify(images) == labels)),
        "corruptions": accuracies,
        "mean": float(np.mean(every)),
    }
