"""Progress lines of the pipeline's long steps: what starts, and how long it took when it ends."""

import contextlib
import time


def duration(seconds):
    """`seconds` in words: "42 s", "3 min 05 s", "1 h 02 min"."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def clock_time(timestamp):
    """A time.time() `timestamp` as the local clock shows it (HH:MM)."""
    return time.strftime("%H:%M", time.localtime(timestamp))


@contextlib.contextmanager
def timed_step(what):
    """Print `what ...` as a step starts and `what: done in <time> (<notes>)` as it ends; the
    block may append short notes to the list it is given."""
    print(f"{what} ...", flush=True)
    start, notes = time.perf_counter(), []
    yield notes
    detail = f" ({', '.join(notes)})" if notes else ""
    print(f"{what}: done in {duration(time.perf_counter() - start)}{detail}", flush=True)
