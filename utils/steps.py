"""The pipeline's steps in order, called by the notebook and train.py alike.

This is the one module below the configuration that reads the whole `args`: each step hands the
stage it calls only the values or sections (`utils.config.sections.section`) that stage needs.
"""

import dataclasses
import json
import os

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from models import build_model, parts
from models.pretrained.backbones import WEIGHTS_HOST, offline_backbone, with_offline_fallback
from models.registry import is_pretrained_name, model_entry
from utils.analysis.summary import analyse_model, analysis_conclusions, compare_analyses
from utils.config.resolve import args_for_model, resolve_args
from utils.config.sections import section
from utils.config.settings import SECTIONS
from utils.data import cifar10 as cifar
from utils.data.pipeline import make_augmenter, make_dataset, make_mixers
from utils.errors import RunFolderError
from utils.evaluation.frontier import frontier_conclusion, frontier_figure
from utils.evaluation.significance import comparisons_markdown, pairwise_comparisons, per_class_p_values
from utils.evaluation.spread import (
    has_spread,
    seed_comparisons,
    seed_comparisons_markdown,
    spread_markdown,
    spread_rows,
)
from utils.evaluation.test_set import comparison_markdown, evaluate_and_predict, row_label, save_comparison
from utils.export import FORMATS as EXPORT_FORMATS
from utils.export import export_model, export_table
from utils.plots import (
    augmentation_figure,
    history_figure,
    overlay_figure,
    predictions_figure,
    samples_figure,
    save_figure,
    schedule_figure,
    seed_band_figure,
)
from utils.progress import duration, timed_step
from utils.runs.folders import RunFolder, open_run, read_json, read_run_args, removed_if_nothing_trained
from utils.runtime.distribution import (
    describe_distribution,
    is_chief,
    strategy_scope,
    validation_batches,
    worker_output_dir,
)
from utils.runtime.environment import (
    choose_precision,
    download_folder,
    flush_drive,
    output_root,
    prepare_session,
    set_seed,
)
from utils.training.callbacks import BEST_MODEL_FILE, ProgressLine, make_callbacks
from utils.training.loop import (
    FINAL_MODEL_FILE,
    TrainingSettings,
    plan_phases,
    planned_learning_rates,
    tested_model_file,
    train_model,
    trainable_weight_count,
    trained_from_folder,
)
from utils.training.optimizers import steps_per_epoch
from utils.tuning.report import write_search_outputs
from utils.tuning.spaces import load_space

FRONTIER_RECORD = os.path.join("benchmarks", "results", "budget_frontier", "budget_frontier.json")


# --- 1. session and run folder ----------------------------------------------------------
def apply_offline_fallback(args):
    """`args` with each ImageNet backbone that cannot be had swapped for the offline backbone of the
    run's budget (`offline_backbone`), when args["offline_fallback"] is on; says what it replaced."""
    if not args["offline_fallback"]:
        return args
    models, replaced = with_offline_fallback(args["models"], args["weights"], args["budget"])
    offline = offline_backbone(args["budget"])
    for name in replaced:
        print(
            f"{name} replaced by {offline}: its ImageNet weights are not in Keras's cache "
            f"and {WEIGHTS_HOST} cannot be reached, while {offline}'s install with the requirements "
            f"(the offline backbone with the best measured {args['budget']}-budget recipe; "
            "offline_fallback=false stops instead; weights=PATH uses a local file)."
        )
    return {**args, "models": models}


def start_session(args):
    """Seed every generator and pick the session's precision (says which); returns the policy."""
    policy = prepare_session(args["seed"], args["precision"], args["cpu_devices"])
    devices = describe_distribution(args["distribute"], args["batch_size"])
    print(f"Default precision policy: {policy}. {devices}")
    return policy


def open_run_folder(args):
    """This run's folder (new, or the unfinished run of the same args resumed), on Drive when asked
    for; a multi-worker run's other workers write to scratch folders. Says which folder."""
    output_dir = worker_output_dir(args["distribute"]) or output_root(args["output_dir"], args["mount_drive"])
    run = open_run(output_dir, args, args["run_name"])
    print(f"Run folder: {run.path} ({'resumed' if run.resumed else 'new'})")
    return run


# --- 2. data ----------------------------------------------------------------------------
@dataclasses.dataclass
class Datasets:
    """The tf.data pipelines of one run; `validation` is None without a validation split."""

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    steps_per_epoch: int
    augmenter: keras.Layer | None
    mixers: tuple  # CutMix / MixUp layers of the training pipeline
    data: cifar.Cifar10  # the arrays behind the pipelines (for fitted layers and cached features)


def load_data(args, with_test=True):
    """CIFAR-10 as args ask (data_path, small_run, val_fraction split by seed); a download is
    kept on Drive with mount_drive. Without `with_test` the test images are left out (a search
    chooses by validation accuracy and never reads them; ConfigError without a validation split)."""
    if not with_test:
        cifar.check_validation_split(args["val_fraction"])
    data = cifar.prepare_data(
        args["data_path"],
        args["val_fraction"],
        args["seed"],
        small_run=args["small_run"],
        download_to=download_folder(args["mount_drive"]),
    )
    if with_test:
        return data
    return dataclasses.replace(data, test=cifar.Split(data.test.images[:0], data.test.labels[:0]))


def make_datasets(data, args):
    """Training (shuffled, augmented), validation and test pipelines for `data`."""
    augmentation, seed, batch = section(args, "augmentation"), args["seed"], args["batch_size"]
    augmenter, mixers = make_augmenter(augmentation, seed), make_mixers(augmentation, seed)
    return Datasets(
        train=make_dataset(
            data.train,
            batch,
            training=True,
            augmenter=augmenter,
            mixers=mixers,
            seed=seed,
            alternating_flip=augmentation.augment_flip == "alternating",
        ),
        validation=None
        if data.validation is None
        else make_dataset(
            data.validation,
            batch,
            training=False,
            whole_batches=validation_batches(args["distribute"], batch, len(data.validation)),
        ),
        test=make_dataset(data.test, batch, training=False),
        steps_per_epoch=steps_per_epoch(len(data.train), batch),
        augmenter=augmenter,
        mixers=mixers,
        data=data,
    )


def datasets_for_model(datasets, args, model_args):
    """The pipelines a model trains on: the run's, or its own when its args (`args_for_model`)
    change the batch size or the augmentation."""
    keys = ("batch_size", *SECTIONS["augmentation"])
    if all(model_args[key] == args[key] for key in keys):
        return datasets
    return make_datasets(datasets.data, model_args)


# --- 3. models --------------------------------------------------------------------------
def model_options_for(name, args):
    """Builder options from args: weights, image sizes and feature_depths for pretrained models,
    then the model's own entry of args['model_options'], which wins."""
    options = {}
    if is_pretrained_name(name):
        options = {key: args[key] for key in ("weights", "image_size", "feature_depths", "image_size_start")}
    return {**options, **args["model_options"].get(name, {})}


def build_for_run(name, args):
    """Build registered model `name` with the options its args (`args_for_model`) give it, under
    the precision policy chosen for it (a model keeps the policy it was built with)."""
    policy = choose_precision(args["precision"], model_entry(name).cpu_float32)
    keras.mixed_precision.set_global_policy(policy)
    with strategy_scope(args["distribute"]):
        return build_model(
            name, cifar.IMAGE_SHAPE, cifar.NUM_CLASSES, **model_options_for(name, args_for_model(args, name))
        )


def build_models(args):
    """Every model of args["models"], built before any training (missing weights fail first);
    prints each one's size, precision and own args."""
    built = [build_for_run(name, args) for name in args["models"]]
    for model in built:
        own = args["model_args"].get(model.name)
        print(
            f"{model.name}: {model.count_params():,} parameters ({trainable_weight_count(model):,} "
            f"trainable), precision {model.dtype_policy.name}" + (f", its own args {own}" if own else "")
        )
    return built


# --- 4. training ------------------------------------------------------------------------
def training_settings(args):
    """What the training stage reads of `args` (one model's: `args_for_model`)."""
    return TrainingSettings(
        optimizer=section(args, "optimizer"),
        training=section(args, "training"),
        callbacks=section(args, "callbacks"),
        seed=args["seed"],
        jit_compile=args["jit_compile"],
        distribute=args["distribute"],
    )


def run_callbacks(args, folder, phase):
    """The callbacks args switch on, writing into `folder`, for a phase starting at epoch 0
    monitored on the training loss (the benchmarks time steps with them)."""
    return make_callbacks(
        section(args, "callbacks"),
        folder,
        "loss",
        phase,
        {},
        first_epoch=0,
        ema_momentum=args["ema_momentum"],
    )


def planned_schedule(args, datasets):
    """(model name, epochs, learning rates) planned for the first pretrained model (head phase, then
    fine-tuning), else for the first model, for a preview plot."""
    name = next((name for name in args["models"] if is_pretrained_name(name)), args["models"][0])
    model_args = args_for_model(args, name)
    steps = datasets_for_model(datasets, args, model_args).steps_per_epoch
    return name, *planned_learning_rates(training_settings(model_args), steps, is_pretrained_name(name))


def train_one(model, datasets, args, run, extra_callbacks=(), seed=None):
    """Train a model built by `build_for_run` with its args (`args_for_model`) into its run
    sub-folder (its `seed`'s, for a seed of args["seeds"]), resuming if interrupted (under args'
    distribution strategy, as it was built)."""
    model_args = args_for_model(args, model.name)
    own_datasets = datasets_for_model(datasets, args, model_args)
    with strategy_scope(args["distribute"]):
        settings = training_settings(model_args)
        trained = train_model(
            model.name, model, own_datasets, settings, run.model_dir(model.name, seed), extra_callbacks
        )
    return dataclasses.replace(trained, seed=seed)


def save_curves(trained, run):
    """Save and return the learning-curve figure of one trained model."""
    figure = history_figure(trained)
    save_figure(figure, os.path.join(run.model_dir(trained.name, trained.seed), "curves.png"))
    return figure


def planned_epochs(args, name):
    """Epochs model `name` trains over all its phases, by its args."""
    settings = training_settings(args_for_model(args, name))
    return sum(phase.epochs for phase in plan_phases(settings, is_pretrained_name(name)))


def recipe_seconds(args, name):
    """Training seconds of model `name` by its recipe's record when it trains on that recipe, else
    None (no estimate)."""
    recipe = model_entry(name).recipes.get(args["budget"])
    if recipe is None or args["model_args"].get(name) != recipe.args:
        return None
    return 60 * recipe.evidence.minutes


def later_seconds(args, names):
    """Estimated training seconds of the models `names` (None if one has no estimate)."""
    estimates = [recipe_seconds(args, name) for name in names]
    return None if None in estimates else sum(estimates)


def seeded_models(built, datasets, args):
    """(seed, models, datasets, args) per training seed: the built models for the run's seed (None
    without args["seeds"]); for each later seed of args["seeds"], the same models built again and
    pipelines made again under that seed (the data split stays the run's)."""
    seeds = args["seeds"] or [None]
    yield seeds[0], built, datasets, args
    for seed in seeds[1:]:
        seed_args = {**args, "seed": seed}
        set_seed(seed)
        yield (
            seed,
            [build_for_run(model.name, seed_args) for model in built],
            make_datasets(datasets.data, seed_args),
            seed_args,
        )


def train_models(built, datasets, args, run):
    """Train each built model in turn (once per seed of args["seeds"]), saying which of how many and,
    after each epoch, when it and the run should end; save its learning curves, then every model's
    validation curves together (curves_overlay.png) and, with seeds, each model's seeds as a band
    (<model>/curves_seeds.png); returns the trained models, seed by seed."""
    names = [model.name for model in built]
    queue = [(seed, name) for seed in args["seeds"] or [None] for name in names]
    trained_models = []
    for seed, models, seed_datasets, seed_args in seeded_models(built, datasets, args):
        for model in models:
            index = queue.index((seed, model.name))
            label = (
                f"{model.name}{'' if seed is None else f' seed {seed}'} (model {index + 1} of {len(queue)})"
            )
            epochs = planned_epochs(args, model.name)
            print(f"--- {label}: {epochs} epoch{'s' * (epochs != 1)} planned ---", flush=True)
            later = later_seconds(args, [name for _, name in queue[index + 1 :]])
            trained = train_one(
                model, seed_datasets, seed_args, run, [ProgressLine(label, epochs, later)], seed
            )
            epochs_done = len(trained.history["epoch"])
            print(f"{trained.label}: {epochs_done} epochs in {duration(trained.train_seconds)}")
            plt.close(save_curves(trained, run))
            trained_models.append(trained)
    for name, seeds in models_by_name(trained_models).items():
        if len(seeds) > 1:
            plt.close(
                save_figure(seed_band_figure(seeds), os.path.join(run.model_dir(name), "curves_seeds.png"))
            )
    plt.close(save_figure(overlay_figure(trained_models), run.file("curves_overlay.png")))
    return trained_models


def models_by_name(trained_models):
    """{model name: its trained models, one per seed}, in the run's order."""
    grouped = {}
    for trained in trained_models:
        grouped.setdefault(trained.name, []).append(trained)
    return grouped


def learning_curves(trained_models):
    """Each model's learning curves (with several seeds, the seeds as a band) and all validation
    curves together, to show (`train_models` saved them)."""
    return [
        *(
            seed_band_figure(seeds) if len(seeds) > 1 else history_figure(seeds[0])
            for seeds in models_by_name(trained_models).values()
        ),
        overlay_figure(trained_models),
    ]


# --- 5. testing, analysis, conclusion --------------------------------------------------
def load_run_models(run_path):
    """Every model trained in an earlier run folder (each seed's, with args["seeds"]), read back in
    the run's order.

    Raises:
        RunFolderError: when the folder holds no run or no trained model.
    """
    run_args, run = read_run_args(run_path), RunFolder(run_path, resumed=True)
    trained = []
    for seed in run_args.get("seeds") or [None]:
        for name in run_args["models"]:
            model_dir = run.model_dir(name, seed)
            saved = tested_model_file(model_dir)
            if saved:
                trained.append(trained_from_folder(name, keras.models.load_model(saved), model_dir, seed))
    if not trained:
        raise RunFolderError(f"{run_path} holds no trained model ({BEST_MODEL_FILE} or {FINAL_MODEL_FILE}).")
    return trained


def models_for_testing(trained_models, run_path, args):
    """The models to test: as trained, or after distributed training reloaded from the run folder
    outside the strategy, which would split the test set (and its last batch) across replicas."""
    if args["distribute"] == "none":
        return trained_models
    return load_run_models(run_path)


def analyse_trained(trained, data, run, args, test_probabilities=None):
    """The analysis of one trained model (utils.analysis) into its run sub-folder."""
    return analyse_model(
        trained.model,
        trained.name,
        data,
        run.model_dir(trained.name, trained.seed),
        batch_size=args["batch_size"],
        seed=args["seed"],
        robustness_per_class=args["robustness_per_class"],
        test_probabilities=test_probabilities,
    )


@dataclasses.dataclass
class Evaluation:
    """The test of a run's models: one comparison row and the test probabilities per trained model
    (by `TrainedModel.label`, in the run's order), and the analysis summaries when args ask for them;
    with several seeds, each model's spread and the differences over the seeds."""

    rows: list
    probabilities: dict
    summaries: list
    table: str  # the comparison and the paired tests, markdown (comparison.md)
    analysis_table: str | None  # the analyses side by side, markdown
    comparisons: list  # PairedComparison of every pair of models trained with the same seed
    labels: np.ndarray  # the test images' classes
    class_names: list
    spread: list | None = None  # spread_rows, with several seeds
    seed_comparisons: list = dataclasses.field(default_factory=list)  # SeedComparison per pair

    def class_p_values(self, first, second):
        """{class: McNemar's p-value of two tested models (labels) on that class's test images}."""
        first_right, second_right = (
            self.probabilities[label].argmax(axis=1) == self.labels for label in (first, second)
        )
        return per_class_p_values(first_right, second_right, self.labels, self.class_names)

    def comparison_of(self, first, second):
        """The paired comparison of two tested models (labels), as `first` against `second`."""
        return _oriented(self.comparisons, first, second)

    def seed_comparison_of(self, first, second):
        """The comparison over seeds of two models (names), as `first` against `second`."""
        return _oriented(self.seed_comparisons, first, second)

    def best_row(self):
        return max(self.rows, key=lambda row: row["test_accuracy"])

    def report(self):
        """The analysis table (if any), then the comparison, in markdown."""
        return "\n\n".join(filter(None, [self.analysis_table, self.table]))


def _oriented(comparisons, first, second):
    """The comparison of `first` and `second` among `comparisons`, turned to read first against second."""
    for item in comparisons:
        if (item.first, item.second) == (first, second):
            return item
        if (item.second, item.first) == (first, second):
            return item.swapped()
    raise KeyError(f"{first} and {second} were not compared.")


def paired_by_seed(trained_models, probabilities, labels):
    """The paired tests of every two models trained with the same seed, seed by seed."""
    by_seed = {}
    for trained in trained_models:
        by_seed.setdefault(trained.seed, {})[trained.label] = probabilities[trained.label]
    return [item for group in by_seed.values() for item in pairwise_comparisons(group, labels)]


def evaluate_and_analyse(trained_models, datasets, run, args):
    """Test every model once and, if args ask, analyse each (of the first seed, with several); save
    the comparison and the analysis. metrics.json, written last, marks the run finished, so an
    interruption before it repeats this step on resuming."""
    rows, probabilities, summaries = [], {}, []
    for trained in trained_models:
        with timed_step(f"Testing {trained.label} on {len(datasets.data.test):,} images, plain and flipped"):
            row, probabilities[trained.label] = evaluate_and_predict(trained, datasets.test)
        rows.append(row)
        if args["analysis"] and trained.seed == trained_models[0].seed:
            with timed_step(f"Analysing {trained.label}") as notes:
                summary = analyse_trained(trained, datasets.data, run, args, probabilities[trained.label])
                notes += [f"{part} {duration(seconds)}" for part, seconds in summary["seconds"].items()]
            summaries.append(summary)
    analysis_table = compare_analyses(summaries, datasets.data.class_names, run) if summaries else None
    test = datasets.data.test
    comparisons = paired_by_seed(trained_models, probabilities, test.labels)
    spread = spread_rows(rows) if has_spread(rows) else None
    over_seeds = seed_comparisons(rows) if spread else []
    spread_tables = spread and (spread_markdown(spread), over_seeds and seed_comparisons_markdown(over_seeds))
    table = comparison_markdown(rows, comparisons and comparisons_markdown(comparisons), spread_tables)
    save_comparison(rows, run, table)
    return Evaluation(
        rows,
        probabilities,
        summaries,
        table,
        analysis_table,
        comparisons,
        test.labels,
        datasets.data.class_names,
        spread,
        over_seeds,
    )


def _percent(row, spread):
    """A model's test accuracy in words: with several seeds, its mean, sd and seed count."""
    if spread is None:
        return f"{100 * row['test_accuracy']:.2f}%"
    accuracy = next(item for item in spread if item["model"] == row["model"])["test_accuracy"]
    return f"{100 * accuracy['mean']:.2f}% ± {100 * accuracy['std']:.2f} (mean ± sd of its seeds)"


def _best_by_model(rows, spread):
    """The first row of the model among `rows` with the best test accuracy (mean over its seeds,
    with several)."""
    if spread is None:
        return max(rows, key=lambda row: row["test_accuracy"])
    models = {row["model"] for row in rows}
    best = max(
        (item for item in spread if item["model"] in models), key=lambda item: item["test_accuracy"]["mean"]
    )
    return next(row for row in rows if row["model"] == best["model"])


def _approaches_line(evaluation, scratch, pretrained):
    """The best from-scratch model against the best pretrained one, with the paired test (the first
    seed's, with several, then the test over the seeds)."""
    spread = evaluation.spread
    best_scratch, best_pretrained = _best_by_model(scratch, spread), _best_by_model(pretrained, spread)
    paired = evaluation.comparison_of(row_label(best_pretrained), row_label(best_scratch))
    decided = paired
    if spread is not None:
        decided = evaluation.seed_comparison_of(best_pretrained["model"], best_scratch["model"])
    difference = decided.mean if spread is not None else decided.difference
    verdict = (
        f"{'transfer learning' if difference > 0 else 'training from scratch'} wins: "
        if decided.significant
        else "at this test set's resolution neither approach wins: "
    )
    evidence = (
        paired.sentence()
        if spread is None
        else f"{decided.sentence()}; seed {best_scratch['seed']}: {paired.sentence()}"
    )
    return (
        (
            f"From scratch, {best_scratch['model']} reached {_percent(best_scratch, spread)}; "
            f"pretrained, {best_pretrained['model']} reached {_percent(best_pretrained, spread)}: "
            f"{verdict}{evidence}."
        ),
        best_scratch,
        best_pretrained,
    )


def conclusion(evaluation, trained_models):
    """The run's conclusion in markdown, computed from its tables: the best model, the best from
    scratch against the best pretrained one (over the seeds, with several), and what the analysis
    found (of the first seed)."""
    best = _best_by_model(evaluation.rows, evaluation.spread)
    pretrained_names = {trained.name for trained in trained_models if parts.has_backbone(trained.model)}
    scratch = [row for row in evaluation.rows if row["model"] not in pretrained_names]
    pretrained = [row for row in evaluation.rows if row["model"] in pretrained_names]
    of_seed = "" if evaluation.spread is None else f"seed {best['seed']}: "
    lines = [
        f"Best model: **{best['model']}** with {_percent(best, evaluation.spread)} test accuracy "
        f"({of_seed}test loss {best['test_loss']:.3f} after {best['train_seconds']:.0f} s of training)."
    ]
    best_scratch = best_pretrained = {"model": None}
    class_p_values = None
    if scratch and pretrained:
        line, best_scratch, best_pretrained = _approaches_line(evaluation, scratch, pretrained)
        lines.append(line)
        class_p_values = evaluation.class_p_values(row_label(best_scratch), row_label(best_pretrained))
    lines += analysis_conclusions(
        evaluation.summaries, best_scratch["model"], best_pretrained["model"], class_p_values
    )
    return "\n\n".join(lines)


def finish(args):
    """Colab with Drive: write pending files out before the runtime can disconnect."""
    flush_drive(args["mount_drive"])


# --- what the notebook shows along the way ---------------------------------------------
def show_data(data, run):
    """Print each split's shape and class counts; save and return a grid of training samples."""
    print(json.dumps(cifar.describe(data), indent=1))
    figure = samples_figure(data.train, data.class_names)
    save_figure(figure, run.file("samples.png"))
    return figure


def show_augmentation(datasets, args, run):
    """Say how many steps make an epoch; save and return four training images augmented."""
    print(f"{datasets.steps_per_epoch} training steps per epoch of {args['batch_size']} images")
    figure = augmentation_figure(datasets.data.train.images[:4], datasets.augmenter)
    save_figure(figure, run.file("augmentation.png"))
    return figure


def show_schedule(args, datasets):
    """The planned learning rate of the first pretrained model, else of the first model."""
    name, epochs, rates = planned_schedule(args, datasets)
    print(f"Planned learning rate of {name}:")
    return schedule_figure(epochs, rates)


def show_predictions(evaluation, data, run, count=24):
    """Save and return the best model's predictions for the first `count` test images."""
    best = row_label(evaluation.best_row())
    predicted = evaluation.probabilities[best].argmax(axis=1)[:count]
    test = data.test
    figure = predictions_figure(test.images[:count], test.labels[:count], predicted, data.class_names, best)
    save_figure(figure, run.file("predictions.png"))
    return figure


def comparison_figures(run):
    """Paths of the analysis figures that put the models side by side (those written)."""
    paths = [run.file(name) for name in ("per_class_f1.png", "robustness.png")]
    return [path for path in paths if os.path.isfile(path)]


def model_figures(evaluation, run):
    """(model, path) of each analysed model's figures (of the first seed, with several): confusion,
    reliability, mistakes, Grad-CAM (a model without mistakes has no gallery)."""
    shown, analysed_seed = [], evaluation.rows[0]["seed"]
    for summary in evaluation.summaries:
        folder = run.model_dir(summary["model"], analysed_seed)
        for name in ("confusion.png", "reliability.png", "mistakes.png", "gradcam.png"):
            shown.append((summary["model"], os.path.join(folder, name)))
    return [(model, path) for model, path in shown if os.path.isfile(path)]


def show_frontier(record_path=FRONTIER_RECORD):
    """The budget frontier's figure and conclusion (markdown) from its record, or how to make it."""
    record = read_json(record_path)
    if not record:
        return None, f"No frontier record at {record_path} yet: benchmarks/README.md says how to make one."
    return frontier_figure(record), frontier_conclusion(record)


def search_first_model(args, trials, run):
    """A random search of `trials` trials over the first model's default space, in the run folder;
    returns its table (markdown) and the path of its figure, or a line saying how to search."""
    if not trials:
        return "search_trials = 0: no search. Headless: python tune.py --set data_path=PATH", None
    from utils.tuning.search import SearchOptions, search  # here: the search imports this module

    searched = {**args, "models": [args["models"][0]]}
    space = load_space(None, args["models"][0])
    folder = run.file("search")
    tuner = search(searched, space, SearchOptions("random", trials), folder)
    table = write_search_outputs(tuner.oracle, space, searched, folder)
    best_args = os.path.join(folder, "best_args.json")
    summary = f"{table}\n\nBest args: {best_args} (train.py --config takes it)"
    return summary, os.path.join(folder, "trials.png")


def export_best(evaluation, run, data):
    """Export the best model in every format, each checked against it; returns the table."""
    best = evaluation.best_row()
    folder = run.model_dir(best["model"], best["seed"])
    return export_table(export_model(folder, EXPORT_FORMATS, os.path.join(folder, "export"), data))


# --- the whole pipeline -----------------------------------------------------------------
def run_pipeline(args):
    """Every step of the notebook, in its order; returns the run folder's path. In a multi-worker
    run, every worker trains; the chief alone tests and analyses, on the saved models."""
    args = apply_offline_fallback(args)
    start_session(args)
    run = open_run_folder(args)
    with removed_if_nothing_trained(run):
        data = load_data(args)
        print(json.dumps(cifar.describe(data), indent=1))
        datasets = make_datasets(data, args)
        trained_models = train_models(build_models(args), datasets, args, run)
    if not is_chief(args["distribute"]):
        return run.path
    tested = models_for_testing(trained_models, run.path, args)
    evaluation = evaluate_and_analyse(tested, datasets, run, args)
    print(evaluation.report(), conclusion(evaluation, tested), sep="\n\n")
    finish(args)
    return run.path


def evaluate_run(run_path, overrides):
    """Test the models of an earlier run again (its args, plus overrides such as data_path)."""
    args = resolve_args({**read_run_args(run_path), **overrides})
    start_session(args)
    datasets = make_datasets(load_data(args), args)
    run = RunFolder(run_path, resumed=True)
    print(evaluate_and_analyse(load_run_models(run_path), datasets, run, args).report())


def train_trial(args, data):
    """One search trial: the first model of `args` trained on `data` in the trial's run folder."""
    start_session(args)
    run = open_run(args["output_dir"], args, args["run_name"])
    return train_one(build_for_run(args["models"][0], args), make_datasets(data, args), args, run)
