"""Run folders: create or resume `<output_dir>/<run_name>/`, and small JSON/CSV helpers."""

import contextlib
import csv
import dataclasses
import datetime
import io
import json
import os
import shutil

from utils.errors import RunFolderError

ARGS_FILE = "args.json"
METRICS_FILE = "metrics.json"
# Keys that do not change what a run computes, so they may differ when resuming.
KEYS_FREE_ON_RESUME = ("verbose",)


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """Where one run writes everything; `resumed` says an interrupted run was found."""

    path: str
    resumed: bool

    def model_dir(self, model_name, seed=None):
        """A model's sub-folder; with a seed of args["seeds"], that seed's folder inside it."""
        folder = os.path.join(self.path, model_name)
        return folder if seed is None else os.path.join(folder, f"seed_{seed}")

    def file(self, name):
        return os.path.join(self.path, name)


@contextlib.contextmanager
def removed_if_nothing_trained(run):
    """Remove a new run's folder when the block fails (or is interrupted) before any model's
    sub-folder was made, so a start that fails leaves nothing behind; a resumed run, or one that
    began training, is kept for the next attempt to resume."""
    try:
        yield run
    except BaseException:
        began = any(entry.is_dir() for entry in os.scandir(run.path)) if os.path.isdir(run.path) else True
        if not run.resumed and not began:
            shutil.rmtree(run.path, ignore_errors=True)
        raise


def partial_path(path):
    """Where `path` is written before being renamed into place: the same folder and suffix (which
    Keras checks), "partial" before the suffix."""
    folder, name = os.path.split(path)
    stem, _, suffix = name.partition(".")
    return os.path.join(folder, f"{stem}.partial.{suffix}")


def save_atomically(save, path):
    """`save(file)` into `partial_path(path)`, then rename it over `path`: an interruption during
    the write leaves the previous file (or none), never half of one."""
    partial = partial_path(path)
    save(partial)
    os.replace(partial, path)


def write_json(path, value):
    """Write JSON atomically, so an interruption never leaves half a file."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2, sort_keys=False)
    os.replace(temporary, path)


def read_json(path, default=None):
    if not os.path.isfile(path):
        return default
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _finished_lines(data):
    """`data` up to its last newline: a last line without one was cut short by an interruption
    (of a file written by an earlier version, which appended rows in place)."""
    return data[: data.rfind(b"\n") + 1]


def read_history(path):
    """history.csv as {column: [values]}, one row per epoch (a repeated epoch keeps its last row,
    a line cut short by an interruption is not read)."""
    if not os.path.isfile(path):
        return {}
    with open(path, "rb") as handle:
        text = _finished_lines(handle.read()).decode("utf-8")
    rows = {int(row["epoch"]): row for row in csv.DictReader(io.StringIO(text, newline=""))}
    ordered = [rows[epoch] for epoch in sorted(rows)]
    columns = ordered[0].keys() if ordered else []
    return {column: [_number(row[column]) for row in ordered] for column in columns}


def write_history_row(path, epoch, values):
    """Add the row of `epoch` to history.csv, or replace it when the epoch ran again after a
    resume, rewriting the whole (small) file atomically: one row per epoch, never half a row."""
    history = read_history(path)
    rows = {
        number: {column: history[column][index] for column in history}
        for index, number in enumerate(history.get("epoch", []))
    }
    rows[epoch] = {"epoch": epoch, **values}
    columns = ["epoch", *sorted({column for row in rows.values() for column in row} - {"epoch"})]
    temporary = f"{path}.tmp"
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows[number] for number in sorted(rows))
    os.replace(temporary, path)


def _number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def model_run_args(model_dir):
    """The args of the run a model folder (RUN/MODEL) belongs to, or None outside a run."""
    return read_json(os.path.join(os.path.dirname(os.path.normpath(model_dir)), ARGS_FILE))


def read_run_args(run_path):
    """The args an earlier run saved; raises RunFolderError if `run_path` holds no run."""
    args = read_json(os.path.join(run_path, ARGS_FILE))
    if args is None:
        raise RunFolderError(f"{run_path} is not a run folder: it has no {ARGS_FILE}.")
    return args


def is_finished(path):
    return os.path.isfile(os.path.join(path, METRICS_FILE))


def _comparable(record):
    return {key: value for key, value in record.items() if key not in KEYS_FREE_ON_RESUME}


def _same_args(path, record):
    saved = read_json(os.path.join(path, ARGS_FILE))
    return saved is not None and _comparable(saved) == _comparable(record)


def _resumable_runs(output_dir, record):
    if not os.path.isdir(output_dir):
        return []
    candidates = [os.path.join(output_dir, name) for name in sorted(os.listdir(output_dir))]
    return [p for p in candidates if os.path.isdir(p) and not is_finished(p) and _same_args(p, record)]


def _new_name(output_dir):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name, counter = stamp, 1
    while os.path.exists(os.path.join(output_dir, name)):
        counter += 1
        name = f"{stamp}-{counter}"
    return name


def open_run(output_dir, record, name=None):
    """Create this run's folder in `output_dir`, or reopen the unfinished run of the same record.

    `record` is what the folder keeps as args.json (a run's args) and what tells two runs apart
    (but for KEYS_FREE_ON_RESUME). With a `name` (args["run_name"]), that folder is resumed if it
    holds an unfinished run of an identical record; a finished run or a different record raise
    instead of overwriting. With no name, the newest unfinished run of an identical record is
    resumed, else a time-stamped folder is created.
    """
    if name:
        path = os.path.join(output_dir, name)
        if os.path.exists(path):
            _check_resumable(path, record)
            return RunFolder(path, resumed=True)
    else:
        resumable = _resumable_runs(output_dir, record)
        if resumable:
            return RunFolder(resumable[-1], resumed=True)
        path = os.path.join(output_dir, _new_name(output_dir))
    try:
        os.makedirs(path)
        write_json(os.path.join(path, ARGS_FILE), record)
    except OSError as error:
        raise RunFolderError(
            f"Cannot write the run folder {path} ({error.strerror}); set args['output_dir'] to a "
            "folder you can write to."
        ) from error
    return RunFolder(path, resumed=False)


def _check_resumable(path, record):
    if is_finished(path):
        raise RunFolderError(
            f"Run folder {path} holds a finished run; choose another args['run_name'] "
            "(or null for a time-stamped one), or delete that folder."
        )
    saved = read_json(os.path.join(path, ARGS_FILE))
    if saved is None or _comparable(saved) != _comparable(record):
        differing = sorted(
            k for k in record if (saved or {}).get(k) != record[k] and k not in KEYS_FREE_ON_RESUME
        )
        raise RunFolderError(
            f"Run folder {path} holds another run (args differ in {differing}); choose another "
            "args['run_name'] or rerun with the same args to resume it."
        )
