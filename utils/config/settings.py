"""The `args` keys: default, accepted values and meaning of each, grouped by pipeline stage, and
the named recipes.

Every setting of a run lives in one flat `args` dict, so the notebook and the command line set a key
without knowing its stage. `SECTIONS` below is the one source of truth for the keys, one section per
stage; below the facade (`utils.steps`) a stage is handed only its own section
(`utils.config.sections.section`), never the whole dict. `utils.config.resolve.resolve_args`
validates and merges overrides.
"""

import dataclasses
import json
import textwrap
from collections.abc import Callable
from typing import Any

NoneType = type(None)

# A recipe's budget (args["budget"]): "short" fits the default run (both its models within about
# 20 minutes on 2 CPU cores), "long" is a model's best measured within about an hour.
BUDGETS = ("short", "long")


# The args one model may take apart from the run's (`model_args`): how it is built, its training
# pipeline's batch and augmentation, its optimizer, schedule, phases and weight selection; not the
# data split, the devices nor where anything is written.
MODEL_ARGS_KEYS = (
    "image_size",
    "image_size_start",
    "feature_depths",
    "augment_flip",
    "augment_translate",
    "augment_erasing",
    "augment_randaugment",
    "augment_mixup",
    "augment_cutmix",
    "optimizer",
    "learning_rate",
    "momentum",
    "muon_lr_factor",
    "muon_momentum",
    "weight_decay",
    "lr_schedule",
    "warmup_epochs",
    "ema_momentum",
    "epochs",
    "batch_size",
    "fine_tune_layers",
    "fine_tune_epochs",
    "fine_tune_lr_factor",
    "fine_tune_backbone_lr_factor",
    "label_smoothing",
    "checkpoint",
    "early_stopping_patience",
    "reduce_lr_patience",
    "reduce_lr_factor",
    "lookahead_steps",
)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One `args` key: its default, accepted types, extra check and meaning."""

    default: Any
    types: tuple
    doc: str
    check: Callable[[Any], bool] = lambda value: True
    accepted: str = ""

    def describe_accepted(self):
        """The accepted values in words, for error messages and the README."""
        if self.accepted:
            return self.accepted
        return " or ".join(_type_name(kind) for kind in self.types)


def _type_name(kind):
    return {NoneType: "null", bool: "true/false", int: "an integer", float: "a number"}.get(
        kind, kind.__name__
    )


def _between(low, high, *, low_open=False, high_open=False):
    """A check that a number lies in [low, high]; `low_open` / `high_open` leave out that end."""

    def check(value):
        if value is None:
            return True
        return (low < value if low_open else low <= value) and (value < high if high_open else value <= high)

    return check


def _one_of(*choices):
    return lambda value: value in choices


def _model_names(value):
    names = isinstance(value, list) and len(value) > 0 and all(isinstance(n, str) for n in value)
    return names and len(set(value)) == len(value)


SECTIONS = {
    "data": {  # CIFAR-10 and its split
        "data_path": Setting(
            None,
            (str, NoneType),
            "Local CIFAR-10: `cifar-10-python.tar.gz` or its extracted `cifar-10-batches-py` "
            "folder. null: the `CIFAR10_DATA` environment variable, else download with Keras.",
        ),
        "val_fraction": Setting(
            0.1,
            (float, int),
            "Fraction of the training set held out (stratified) for validation; 0 trains on all "
            "50,000 images.",
            _between(0, 0.5),
            "a number in [0, 0.5]",
        ),
        "small_run": Setting(
            False,
            (bool,),
            "Tiny data (50 train / 20 test images per class) and one epoch per phase "
            "(overrides epochs): the whole pipeline in seconds, for tests and quick checks.",
        ),
    },
    "augmentation": {  # training only; off at inference
        "augment_flip": Setting(
            True,
            (bool, str),
            'Horizontal flip: true flips each image at random; "alternating" flips a fixed random half of '
            "the images on even epochs and the other half on odd epochs (every image seen both ways in two "
            "epochs).",
            lambda value: isinstance(value, bool) or value == "alternating",
            'true, false or "alternating"',
        ),
        "augment_translate": Setting(
            0.125,
            (float, int),
            "Random translation by whole pixels, up to this fraction of the image side each way (0.125 = up "
            "to 4 pixels, every shift equally likely, the border mirrored); 0 turns it off.",
            _between(0, 0.5),
            "a number in [0, 0.5]",
        ),
        "augment_erasing": Setting(
            0.0,
            (float, int),
            "Probability of random erasing (cutout) per image; 0 turns it off.",
            _between(0, 1),
            "a probability in [0, 1]",
        ),
        "augment_randaugment": Setting(False, (bool,), "RandAugment (2 random ops per image)."),
        "augment_mixup": Setting(
            0.0,
            (float, int),
            "MixUp: each training batch is blended with a shuffled copy of itself, images and one-hot "
            "labels alike, in a share drawn from Beta(alpha, alpha); this is alpha (0.2-0.4 usual; "
            "0 turns it off).",
            _between(0, 10),
            "a number in [0, 10]",
        ),
        "augment_cutmix": Setting(
            0.0,
            (float, int),
            "CutMix: a random box of each training image is replaced by the same box of another image of "
            "the batch, the labels mixed by area, the area drawn from Beta(factor, factor); this is the "
            "factor (1.0 usual; 0 turns it off). With MixUp too, CutMix comes first.",
            _between(0, 10),
            "a number in [0, 10]",
        ),
    },
    "model": {  # which models, and the options of pretrained ones
        "models": Setting(
            ["fast_cnn", "vgg16"],
            (list,),
            "Registered model names to train and compare, in order (see `models.available_models()`); "
            "each once.",
            _model_names,
            "a non-empty list of model names, each once",
        ),
        "model_options": Setting(
            {},
            (dict,),
            "Extra keyword options per model name, e.g. "
            '{"custom_cnn": {"width": 96}}; checked against the builder\'s signature.',
        ),
        "budget": Setting(
            "short",
            (str,),
            "Which measured recipe each model trains with by default (its registry entry, "
            "`models.registry.model_recipes(budget)`): short (the default run: fast_cnn and "
            "EfficientNet-Lite0 within 20 minutes on 2 CPU cores) or long (each model's best measured "
            "within about an hour); a model without a recipe for it trains on the run's args.",
            _one_of(*BUDGETS),
            " or ".join(f'"{budget}"' for budget in BUDGETS),
        ),
        "model_args": Setting(
            None,
            (dict, NoneType),
            "Args that replace the run's for one model, per model name, e.g. "
            '{"efficientnet_lite0": {"image_size": 96}}; keys among '
            + ", ".join(MODEL_ARGS_KEYS)
            + ". null: each model's measured recipe for the budget, less the keys you set for the whole "
            "run; {}: every model takes the run's args.",
        ),
        "weights": Setting(
            "imagenet",
            (str, NoneType),
            'Pretrained models: "imagenet" (download), a local '
            "weights file (.h5 / .weights.h5), or null for random initialisation.",
        ),
        "offline_fallback": Setting(
            True,
            (bool,),
            'With weights "imagenet": replace each keras.applications backbone whose ImageNet weights '
            "are neither in Keras's cache nor downloadable by efficientnet_lite0, whose weights "
            "install with the requirements, saying so; false: stop with an error instead.",
        ),
        "image_size": Setting(
            32,
            (int,),
            "Pretrained models: side in pixels that CIFAR's 32x32 images are resized "
            "to inside the model (bigger is slower and usually more accurate).",
            _between(32, 512),
            "an integer in [32, 512]",
        ),
        "image_size_start": Setting(
            None,
            (int, NoneType),
            "Pretrained models, progressive resizing: the head phase trains at this side and fine-tuning "
            "raises it linearly, epoch by epoch, to image_size (multiples of 8); small early epochs are "
            "cheap. The saved model resizes to the side of its best epoch. null: image_size throughout.",
            _between(32, 512),
            "null or an integer in [32, 512]",
        ),
        "feature_depths": Setting(
            1,
            (int,),
            "Pretrained models: the head reads the globally pooled maps of the backbone's last N "
            "resolution stages, concatenated (1: its output only; more adds mid-level features, "
            "which helps most while the backbone is frozen).",
            _between(1, 8),
            "an integer in [1, 8]",
        ),
    },
    "optimizer": {  # optimizer, schedule and weight averaging
        "optimizer": Setting(
            "sgd",
            (str,),
            "Optimizer: sgd (Nesterov momentum), adam, amsgrad (Adam with the AMSGrad maximum of past "
            "second moments, as the original project offered), adamw, rmsprop, muon (Keras's Muon: "
            "weight matrices and convolution kernels get orthogonalised momentum updates, the rest and "
            "the classifier AdamW; momentum is its momentum) or muon_sgd (airbench94_muon's split, a "
            "Keras MultiOptimizer: kernels and matrices but the classifier take Muon steps at "
            "muon_lr_factor times the rate with muon_momentum, their norms held fixed; the rest "
            "Nesterov SGD).",
            _one_of("sgd", "adam", "amsgrad", "adamw", "rmsprop", "muon", "muon_sgd"),
            '"sgd", "adam", "amsgrad", "adamw", "rmsprop", "muon" or "muon_sgd"',
        ),
        "learning_rate": Setting(
            0.05,
            (float, int),
            "Peak learning rate.",
            _between(0, 10, low_open=True),
            "a number in (0, 10]",
        ),
        "momentum": Setting(
            0.9,
            (float, int),
            "Momentum of sgd, rmsprop and muon, and of muon_sgd's SGD part.",
            _between(0, 0.999),
            "a number in [0, 0.999]",
        ),
        "muon_lr_factor": Setting(
            0.145,
            (float, int),
            "muon_sgd: the Muon part's learning rate as a multiple of learning_rate (airbench94_muon: 0.24 "
            "against its SGD rate, 1.66 in our mean-loss units).",
            _between(0, 10, low_open=True),
            "a number in (0, 10]",
        ),
        "muon_momentum": Setting(
            0.6,
            (float, int),
            "muon_sgd: momentum of the Muon part (Nesterov).",
            _between(0, 0.999),
            "a number in [0, 0.999]",
        ),
        # Keras decays decoupled: each step shrinks weights by weight_decay * lr. The usual PyTorch
        # 5e-4 (added to the gradient, then amplified 1 / (1 - 0.9) by momentum) shrinks them by
        # 5e-4 * lr * 10 per step, hence 5e-3 here.
        "weight_decay": Setting(
            5e-3,
            (float, int),
            "Decoupled weight decay: each step shrinks weights by weight_decay * learning rate (0 turns "
            "it off).",
            _between(0, 1),
            "a number in [0, 1]",
        ),
        "lr_schedule": Setting(
            "warmup_cosine",
            (str,),
            "Learning-rate schedule: constant, cosine (decay to 0 over training), warmup_cosine "
            "(linear warmup, then cosine decay) or warmup_linear (linear warmup, then linear decay to 0).",
            _one_of("constant", "cosine", "warmup_cosine", "warmup_linear"),
            '"constant", "cosine", "warmup_cosine" or "warmup_linear"',
        ),
        "warmup_epochs": Setting(
            1.0,
            (float, int),
            "Epochs of linear warmup for warmup_cosine.",
            _between(0, 100),
            "a number in [0, 100]",
        ),
        "ema_momentum": Setting(
            None,
            (float, NoneType),
            "Weight averaging with Keras's optimizer EMA (Polyak averaging): after each step the averaged "
            "weights move 1 - m of the way to the trained ones (so they average about 1 / (1 - m) recent "
            "steps); validation, checkpoints and the final model use the average; null: off.",
            _between(0, 1, low_open=True, high_open=True),
            "a number in (0, 1) or null",
        ),
    },
    "training": {  # phases, batches, loss and the feature cache
        "epochs": Setting(
            20,
            (int,),
            "Training epochs (head phase for pretrained models).",
            _between(1, 10_000),
            "an integer >= 1",
        ),
        "batch_size": Setting(
            128, (int,), "Images per training step.", _between(1, 65_536), "an integer >= 1"
        ),
        "fine_tune_layers": Setting(
            4,
            (int, str),
            "Pretrained models: weighted layers at the top of the base unfrozen for "
            'fine-tuning ("all" for every layer, 0 for none); BatchNorm stays frozen.',
            lambda v: v == "all" or (isinstance(v, int) and v >= 0),
            'an integer >= 0 or "all"',
        ),
        "fine_tune_epochs": Setting(
            10, (int,), "Fine-tuning epochs after the head phase.", _between(0, 10_000), "an integer >= 0"
        ),
        "fine_tune_lr_factor": Setting(
            0.05,
            (float, int),
            "Fine-tuning learning rate = learning_rate * this factor (10-100x lower is usual).",
            _between(0, 1, low_open=True),
            "a number in (0, 1]",
        ),
        "fine_tune_backbone_lr_factor": Setting(
            1.0,
            (float, int),
            "Fine-tuning: the unfrozen backbone layers learn at this factor times the head's rate "
            "(below 1 moves the pretrained weights more gently).",
            _between(0, 1, low_open=True),
            "a number in (0, 1]",
        ),
        "label_smoothing": Setting(
            0.1,
            (float, int),
            "Label smoothing of the one-hot targets.",
            _between(0, 0.5),
            "a number in [0, 0.5]",
        ),
        "feature_cache": Setting(
            True,
            (bool,),
            "Pretrained models with every augmentation off: train the head on backbone features "
            "computed once and cached (seconds per epoch); with augmentation the backbone runs every step.",
        ),
        "feature_cache_dir": Setting("cache/features", (str,), "Folder of the cached backbone features."),
        "verbose": Setting(
            1,
            (int,),
            "Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch.",
            _one_of(0, 1, 2),
            "0, 1 or 2",
        ),
    },
    "callbacks": {  # checkpoints, stopping, resuming
        "checkpoint": Setting(
            True,
            (bool,),
            "Save the best model (by the monitored metric) as best.keras and restore it before testing.",
        ),
        "early_stopping_patience": Setting(
            None,
            (int, NoneType),
            "Epochs without improvement before stopping (null: off).",
            _between(1, 10_000),
            "an integer >= 1 or null",
        ),
        "reduce_lr_patience": Setting(
            None,
            (int, NoneType),
            "Epochs without improvement before the learning rate is "
            "reduced (null: off; needs lr_schedule constant).",
            _between(1, 10_000),
            "an integer >= 1 or null",
        ),
        "reduce_lr_factor": Setting(
            0.2,
            (float, int),
            "Factor of each ReduceLROnPlateau reduction.",
            _between(0, 1, low_open=True),
            "a number in (0, 1)",
        ),
        "lookahead_steps": Setting(
            None,
            (int, NoneType),
            "Lookahead weight averaging: every N steps the weights are pulled towards a slow copy, "
            "more strongly as training ends, and training ends on the slow weights; null: off.",
            _between(1, 10_000),
            "an integer >= 1 or null",
        ),
        "tensorboard": Setting(False, (bool,), "Write TensorBoard logs to <run>/<model>/tensorboard."),
        "backup_and_restore": Setting(
            True,
            (bool,),
            "Back up each epoch so an interrupted run resumes where it stopped "
            "when the same command is run again.",
        ),
        "terminate_on_nan": Setting(
            True,
            (bool,),
            "Stop training when the loss becomes NaN or infinite, with an error naming the epoch "
            "(the history and best model so far are kept).",
        ),
    },
    "runtime": {  # seeds, precision, XLA and devices
        "seed": Setting(42, (int,), "Seed of every random generator (data split, init, augmentation)."),
        "seeds": Setting(
            None,
            (list, NoneType),
            "Train every model once per seed (e.g. [0, 1]), each seed in its own sub-folder of the "
            "model's; the comparison gives each model's mean, standard deviation and range over the "
            "seeds beside the per-seed rows, and tests each difference over the seeds too. `seed` "
            "becomes the first of them (it also splits the data, the same split for every seed); only "
            "the first seed's models are analysed. null: each model once, with `seed`.",
            lambda value: (
                value is None
                or (
                    len(value) > 0
                    and all(isinstance(seed, int) and not isinstance(seed, bool) for seed in value)
                    and len(set(value)) == len(value)
                )
            ),
            "null or a non-empty list of distinct integers",
        ),
        "precision": Setting(
            "auto",
            (str,),
            "Compute precision: auto (per model: mixed_bfloat16 on CPUs with AVX512-BF16/AMX except for "
            "the depthwise backbones measured faster in float32 there (utils/runtime/environment.py), "
            "mixed_float16 on GPUs of compute capability 7.0+, else float32), float32, "
            "mixed_bfloat16 or mixed_float16.",
            _one_of("auto", "float32", "mixed_bfloat16", "mixed_float16"),
            '"auto", "float32", "mixed_bfloat16" or "mixed_float16"',
        ),
        "jit_compile": Setting(
            "auto",
            (str, bool),
            "Compile train steps with XLA: auto (off on CPUs, where it measured slower; Keras's "
            "choice on GPUs), true or false. Every registered model and the progressive-resizing "
            "fine-tune compile (tests/integration/test_xla.py), so none turns it off for itself.",
            lambda value: value in ("auto", True, False),
            '"auto", true or false',
        ),
        "distribute": Setting(
            "none",
            (str,),
            "Data-parallel training (utils/runtime/distribution.py): none; mirrored (every local GPU, "
            "else every logical CPU device); multi_worker (the hosts in the TF_CONFIG environment "
            "variable, each running the same command). No TPU: Colab's TPU runtimes ship no TensorFlow. "
            "batch_size is the global batch, split across replicas, and "
            "learning_rate applies to it unchanged; to keep the per-replica batch when adding replicas, "
            "scale both by the same factor (linear rule).",
            _one_of("none", "mirrored", "multi_worker"),
            '"none", "mirrored" or "multi_worker"',
        ),
        "cpu_devices": Setting(
            None,
            (int, NoneType),
            "Split the CPU into this many logical devices at start-up (for distribute mirrored without "
            "a GPU); null: TensorFlow's single CPU device.",
            _between(1, 64),
            "null or an integer in [1, 64]",
        ),
    },
    "analysis": {  # after testing
        "analysis": Setting(
            True,
            (bool,),
            "After testing, analyse each model into its run folder: confusion matrix and per-class "
            "scores, calibration with a temperature fitted on the validation split, accuracy under "
            "image corruptions, Grad-CAM heat maps.",
        ),
        "robustness_per_class": Setting(
            200,
            (int, NoneType),
            "Test images per class on which accuracy under corruptions is measured (the first of each "
            "class; 200 keeps the analysis of a model within about a minute on 2 CPU cores); null: all.",
            _between(1, 10_000),
            "an integer >= 1 or null",
        ),
    },
    "output": {  # run folders
        "output_dir": Setting("runs", (str,), "Folder that holds one sub-folder per run."),
        "run_name": Setting(
            None,
            (str, NoneType),
            "Name of this run's folder; null: a time stamp, or the "
            "unfinished run with identical args, which is then resumed.",
        ),
        "mount_drive": Setting(
            False,
            (bool,),
            "Colab only: mount Google Drive and keep output_dir and the downloaded CIFAR-10 there (a new "
            "machine after a disconnect resumes the run).",
        ),
    },
    "preset": {  # named recipes applied under your overrides
        "preset": Setting(
            None,
            (str, NoneType),
            "A named recipe (utils/config/settings.py PRESETS) applied on the defaults, under your "
            "overrides: fast (fast_cnn, airbench-style), fast_muon (fast_cnn, airbench94_muon-style), "
            "full (custom_cnn, lenet, fast_cnn and vgg16 on the long budget) or original (the original "
            "project's lenet recipe).",
            lambda value: value is None or value in PRESETS,
            'null, "fast", "fast_muon", "full" or "original"',
        ),
    },
}
SETTINGS = {key: setting for section in SECTIONS.values() for key, setting in section.items()}
STAGE_OF = {key: stage for stage, section in SECTIONS.items() for key in section}


# --- unit conversions of the airbench recipes ------------------------------------------
def kilostep_scale(momentum):
    """airbench's divisor of its per-1024-example rates (airbench94.py `kilostep_scale`)."""
    return 1024 * (1 + 1 / (1 - momentum))


def mean_loss_rate(summed_rate, batch_size, gain=1.0):
    """The learning rate on a loss averaged over the batch that takes the steps `summed_rate` takes
    on the loss summed over it; `gain` divides out a parametrisation that moves the same weights
    faster here (a multiplier m on a layer's output scales the effective rate by m squared)."""
    return summed_rate * batch_size / gain


def decoupled_decay(shrink_per_step, momentum, learning_rate):
    """Keras's decoupled weight_decay (weights shrink by weight_decay * learning_rate per step)
    matching PyTorch SGD's coupled decay that shrinks them by `shrink_per_step` per step, which
    momentum amplifies by 1 / (1 - momentum)."""
    return shrink_per_step / (1 - momentum) / learning_rate


# airbench94: lr 11.5 and weight decay 0.0153 per 1024 examples, batch 1024, momentum 0.85.
_AIRBENCH_SCALE = kilostep_scale(0.85)
FAST_LEARNING_RATE = round(mean_loss_rate(11.5 / _AIRBENCH_SCALE, 1024), 2)  # 1.50
FAST_WEIGHT_DECAY = round(decoupled_decay(0.0153 * 1024 / _AIRBENCH_SCALE, 0.85, FAST_LEARNING_RATE), 4)
# airbench94_muon: SGD rate 0.053 for the BatchNorm shifts (ours learn 8x faster: gain 64) and 0.67
# for the head (its logits times 1/256, ours 1/9: gain (256/9)^2), on a loss summed over 2000
# images; both give 1.66. Its decay 2e-6 * 2000 per step.
FAST_MUON_LEARNING_RATE = round(mean_loss_rate(0.053, 2000, gain=64), 2)  # 1.66
FAST_MUON_WEIGHT_DECAY = round(decoupled_decay(2e-6 * 2000, 0.85, FAST_MUON_LEARNING_RATE), 4)

# Named recipes: each a set of args applied on the defaults before the user's overrides.
PRESETS = {
    # fast_cnn trained the airbench way (arXiv 2404.00498): short, large-batch, Nesterov SGD with
    # warmup and linear decay, strong label smoothing, alternating flip + 2-pixel translation,
    # Lookahead weight averaging; no checkpoint selection: the final (averaged) weights are tested.
    "fast": {
        "models": ["fast_cnn"],
        "epochs": 10,
        "batch_size": 1024,
        "optimizer": "sgd",
        "learning_rate": FAST_LEARNING_RATE,  # airbench's, converted above
        "momentum": 0.85,
        "weight_decay": FAST_WEIGHT_DECAY,
        "lr_schedule": "warmup_linear",
        "warmup_epochs": 2.0,
        "label_smoothing": 0.2,
        "augment_flip": "alternating",
        "augment_translate": 0.0625,
        "lookahead_steps": 5,
        "checkpoint": False,
    },
    # fast_cnn trained as airbench94_muon (the airbench line's Muon record): 8 epochs of batch 2000,
    # no warmup, linear decay, no Lookahead; conv kernels take Muon steps (lr 0.24, momentum 0.6,
    # norms held), BatchNorm shifts and the classifier Nesterov SGD (momentum 0.85); its rates
    # converted above.
    "fast_muon": {
        "models": ["fast_cnn"],
        "epochs": 8,
        "batch_size": 2000,
        "optimizer": "muon_sgd",
        "learning_rate": FAST_MUON_LEARNING_RATE,
        "momentum": 0.85,
        "muon_lr_factor": 0.145,
        "muon_momentum": 0.6,
        "weight_decay": FAST_MUON_WEIGHT_DECAY,
        "lr_schedule": "warmup_linear",
        "warmup_epochs": 0.0,
        "label_smoothing": 0.2,
        "augment_flip": "alternating",
        "augment_translate": 0.0625,
        "lookahead_steps": None,
        "checkpoint": False,
    },
    # The full-length comparison: every from-scratch model and VGG16 (Lite0 offline), each on its
    # long recipe where it has one, else on the run's args (custom_cnn's recipe, 20 epochs).
    "full": {"models": ["custom_cnn", "lenet", "fast_cnn", "vgg16"], "budget": "long"},
    # The original project's recipe, for comparisons: lenet, Adam 1e-3, batch 32, float32, no
    # augmentation, ReduceLROnPlateau (1/3, patience 3) and EarlyStopping (patience 10) on val_loss.
    # Its Adam decay of 1e-6 per step changes the rate by under 8% in 50 epochs and is left out.
    "original": {
        "models": ["lenet"],
        "epochs": 50,
        "batch_size": 32,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "lr_schedule": "constant",
        "label_smoothing": 0.0,
        "augment_flip": False,
        "augment_translate": 0.0,
        "precision": "float32",
        "reduce_lr_patience": 3,
        "reduce_lr_factor": 1 / 3,
        "early_stopping_patience": 10,
    },
}

# A recipe's key that only makes sense with others it was measured with: it is left out of the recipe
# too when the run sets one of them (a size schedule is drawn between image_size_start and image_size
# over the fine-tuning epochs).
RECIPE_KEY_NEEDS = {"image_size_start": ("image_size", "fine_tune_epochs")}

DEFAULTS = {key: setting.default for key, setting in SETTINGS.items()}

SMALL_RUN_TRAIN_PER_CLASS = 50
SMALL_RUN_TEST_PER_CLASS = 20


def describe_args_text(width=100):
    """Every args key by stage, for a terminal: `key = default (accepted)` and its meaning."""
    lines = []
    for stage, section in SECTIONS.items():
        lines.append(f"[{stage}]")
        for key, setting in section.items():
            lines.append(f"  {key} = {json.dumps(setting.default)}   ({setting.describe_accepted()})")
            lines += textwrap.wrap(setting.doc, width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def describe_args_markdown():
    """The args reference as a markdown table (kept in the README)."""
    rows = ["| key | default | accepted | meaning |", "| --- | --- | --- | --- |"]
    for key, setting in SETTINGS.items():
        default = json.dumps(setting.default)
        rows.append(f"| `{key}` | `{default}` | {setting.describe_accepted()} | {setting.doc} |")
    return "\n".join(rows)
