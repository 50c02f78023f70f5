import numpy as np

from utils.config.resolve import resolve_args
from utils.config.sections import section
from utils.data.cifar10 import Split
from utils.data.pipeline import RandomPixelShift, make_augmenter, make_dataset
from utils.steps import load_data

ALL_ON = {
    "augment_flip": True,
    "augment_translate": 0.125,
    "augment_erasing": 0.5,
    "augment_randaugment": True,
}


def split(count=16):
    images = np.random.default_rng(0).integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
    return Split(images, np.arange(count) % 10)


def collect(dataset):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(images), np.concatenate(labels)


def test_eval_pipeline_keeps_images_order_and_one_hot_labels():
    data = split()
    images, labels = collect(make_dataset(data, 5, training=False))
    np.testing.assert_array_equal(images, data.images.astype(np.float32))
    np.testing.assert_array_equal(labels, np.eye(10)[data.labels])


def test_training_pipeline_augments_and_changes_every_epoch():
    data = split()
    dataset = make_dataset(
        data,
        8,
        training=True,
        augmenter=make_augmenter(section(resolve_args(ALL_ON), "augmentation"), 0),
        seed=0,
    )
    two_epochs, _ = collect(dataset.take(4))
    first, second = two_epochs[:16], two_epochs[16:]
    assert first.shape == second.shape == (16, 32, 32, 3)
    assert not np.allclose(first, second)
    originals = {image.tobytes() for image in data.images.astype(np.float32)}
    assert sum(image.tobytes() in originals for image in first) < len(first)


def test_training_pipeline_is_repeatable_for_a_seed():
    import keras

    def first_epoch():
        keras.utils.set_random_seed(1)
        augmenter = make_augmenter(section(resolve_args(ALL_ON), "augmentation"), 1)
        return collect(make_dataset(split(), 8, training=True, augmenter=augmenter, seed=1).take(2))[0]

    np.testing.assert_array_equal(first_epoch(), first_epoch())


def test_augmenter_is_identity_at_inference():
    augmenter = make_augmenter(section(resolve_args(ALL_ON), "augmentation"), 0)
    images = split().images.astype(np.float32)
    np.testing.assert_array_equal(np.asarray(augmenter(images, training=False)), images)


def test_flip_only_mirrors():
    augmenter = make_augmenter(section(resolve_args({"augment_translate": 0}), "augmentation"), 0)
    images = split(64).images.astype(np.float32)
    out = np.asarray(augmenter(images, training=True))
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)]
    unchanged = [np.array_equal(o, i) for o, i in zip(out, images)]
    assert all(m or u for m, u in zip(mirrored, unchanged))
    assert 10 < sum(mirrored) < 54


def test_no_augmentation_switched_on_gives_none():
    off = {"augment_flip": False, "augment_translate": 0}
    assert make_augmenter(section(resolve_args(off), "augmentation"), 0) is None


def test_translation_is_a_uniform_whole_pixel_crop_of_the_mirrored_image():
    images = split(500).images.astype(np.float32)
    shifted = np.asarray(RandomPixelShift(0.0625, seed=0)(images, training=True))
    padded = np.pad(images, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    offsets = []
    for image, moved in zip(padded, shifted):
        crops = {(r, c): image[r : r + 32, c : c + 32] for r in range(5) for c in range(5)}
        found = [offset for offset, crop in crops.items() if np.array_equal(crop, moved)]
        assert len(found) == 1
        offsets.append(found[0])
    for axis in (0, 1):  # 100 of 500 expected at each shift; a rounded continuous shift puts 62 at +-2
        counts = np.bincount([offset[axis] for offset in offsets], minlength=5)
        assert counts.min() >= 75, counts


def test_translation_keeps_the_dtype_and_leaves_inference_alone():
    images = split(8).images
    layer = RandomPixelShift(0.125, seed=0)
    assert layer(images, training=True).dtype == "uint8"
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)


def test_training_stream_shuffles_each_pass_differently_and_keeps_every_image():
    data = split(16)
    images, labels = collect(make_dataset(data, 16, training=True, seed=3).take(3))
    passes = images.reshape(3, 16, -1)
    originals = sorted(image.tobytes() for image in data.images.astype(np.float32))
    for one_pass in passes:
        assert sorted(image.tobytes() for image in one_pass) == originals
    assert not np.array_equal(passes[0], passes[1]) and not np.array_equal(passes[1], passes[2])


def test_alternating_flip_shows_each_image_once_each_way_in_two_passes():
    data = split(64)
    originals = data.images.astype(np.float32)
    plain = {image.tobytes(): index for index, image in enumerate(originals)}
    mirrored = {image[:, ::-1].tobytes(): index for index, image in enumerate(originals)}
    # batches of 48 straddle the passes' ends
    images, _ = collect(make_dataset(data, 48, training=True, seed=0, alternating_flip=True).take(4))

    def mirrored_in_pass(number):
        shown = [image.tobytes() for image in images[64 * number : 64 * (number + 1)]]
        assert all(key in plain or key in mirrored for key in shown)
        return {mirrored[key] for key in shown if key in mirrored}

    first, second, third = (mirrored_in_pass(number) for number in range(3))
    assert 16 < len(first) < 48
    assert first | second == set(range(64)) and not first & second
    assert third == first


def test_mixup_and_cutmix_blend_training_labels_only():
    from utils.data.pipeline import make_mixers

    args = resolve_args({"augment_mixup": 0.4, "augment_cutmix": 1.0})
    mixers = make_mixers(section(args, "augmentation"), 0)
    assert [type(mixer).__name__ for mixer in mixers] == ["CutMix", "MixUp"]
    assert make_mixers(section(resolve_args({}), "augmentation"), 0) == ()
    images, labels = collect(make_dataset(split(), 8, training=True, mixers=mixers, seed=0).take(2))
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-5)  # still a distribution
    assert (labels.max(axis=1) < 1).sum() >= 8  # most labels became soft
    assert (labels > 0).sum(axis=1).max() <= 4  # a CutMix pair, mixed up with another pair
    originals = {image.tobytes() for image in split().images.astype(np.float32)}
    assert sum(image.tobytes() in originals for image in images) < len(images) // 2
    _, evaluated = collect(make_dataset(split(), 8, training=False))
    np.testing.assert_array_equal(evaluated, np.eye(10)[split().labels])


def test_mixing_turns_off_the_feature_cache(tiny_args):
    import keras

    from models import build_model
    from utils.steps import make_datasets, training_settings
    from utils.training.loop import plan_phases, uses_feature_cache

    plain = resolve_args({**tiny_args, "augment_flip": False, "augment_translate": 0})
    mixed = {**plain, "augment_mixup": 0.2}
    model = build_model("efficientnet_lite0", weights=None)
    phase = plan_phases(training_settings(plain), True)[0]
    data = load_data(plain)
    assert uses_feature_cache(model, phase, make_datasets(data, plain), plain["feature_cache"])
    assert not uses_feature_cache(model, phase, make_datasets(data, mixed), mixed["feature_cache"])
    keras.backend.clear_session()
