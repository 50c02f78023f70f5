import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from utils.analysis.corruptions import CORRUPTIONS, SEVERITIES, corrupt, corruption_accuracies


def natural_images(count=6, seed=0):
    """Smooth colour images with edges, like photographs more than like noise."""
    rng = np.random.default_rng(seed)
    images = gaussian_filter(rng.uniform(0, 255, (count, 32, 32, 3)), sigma=(0, 3, 3, 0))
    images = (images - images.min()) / (images.max() - images.min()) * 200 + 20
    images[:, 8:24, 8:24, 0] = 250  # a sharp-edged bright square
    return images.astype(np.uint8)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corruption_keeps_shape_dtype_range_and_grows_with_severity(name):
    images = natural_images()
    distances = []
    for severity in SEVERITIES:
        corrupted = corrupt(images, name, severity, seed=1)
        assert corrupted.shape == images.shape and corrupted.dtype == np.uint8
        assert corrupted.min() >= 0 and corrupted.max() <= 255 and corrupted.std() > 0
        distances.append(np.abs(corrupted.astype(float) - images).mean())
    assert 0 < distances[0] < distances[1] < distances[2], distances


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corruption_is_repeatable_with_the_same_seed(name):
    images = natural_images()
    np.testing.assert_array_equal(corrupt(images, name, 2, seed=3), corrupt(images, name, 2, seed=3))


def test_unknown_severity_is_refused():
    with pytest.raises(ValueError, match="severity 4"):
        corrupt(natural_images(), "contrast", 4)


def test_corruption_accuracies_of_a_noise_detector():
    """A classifier that calls an image class 1 when neighbouring pixels differ a lot: right
    on clean and blurred smooth images (class 0), wrong on every noisy one."""

    def noisy(images):
        steps = np.abs(np.diff(images.astype(float), axis=2)).mean(axis=(1, 2, 3))
        return (steps > 6).astype(int)

    images = natural_images(count=8)
    result = corruption_accuracies(noisy, images, np.zeros(8, int), seed=0)
    assert result["clean"] == 1.0
    assert result["corruptions"]["gaussian_noise"] == [0.0, 0.0, 0.0]
    assert result["corruptions"]["gaussian_blur"] == [1.0, 1.0, 1.0]
    assert set(result["corruptions"]) == set(CORRUPTIONS)
    every = [value for values in result["corruptions"].values() for value in values]
    assert result["mean"] == pytest.approx(np.mean(every))
