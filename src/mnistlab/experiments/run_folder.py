"""Reading and writing the files of a run folder, and the claim a run holds on its folder.

A run folder holds config.json, run.json (the command, version, commit and each value's
source: `provenance`), dataset.json, model.json and weights.npz, history.csv (models trained
epoch by epoch), metrics.json, and checkpoint.npz while the run can still be resumed.

One process at a time works in a run folder: it holds an exclusive `flock` on the folder's
`.run.lock` file for the life of the run (`claim_run_folder`). The kernel releases the lock when
the process ends, however it ends, so a killed run never leaves a stale claim, and anyone can
ask whether a run is still alive (`run_folder_in_use`) without trusting a process id.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import math
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mnistlab._io import read_json, write_text_atomic
from mnistlab.errors import DataError, UsageError
from mnistlab.experiments.config import no_validation
from mnistlab.train.checkpoint import read_npz_meta

#: history columns that, where the header has them, every row must fill
CURVE_KEYS = ("val_loss", "val_accuracy")


#: the file whose lock is a run's claim on its folder
LOCK_NAME = ".run.lock"
#: seconds a claim waits for a lock held briefly (`mnistlab runs list` asking whether a run
#: is alive) before it calls the folder taken
CLAIM_WAIT = 1.0


def jsonable(value):
    """`value` with NumPy scalars and arrays as Python numbers and lists, and every NaN or
    infinity as None: JSON has no NaN (Python would write a bare NaN that other readers refuse,
    after a diverged run)."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, value) -> None:
    """`value` as indented JSON (see `jsonable`: non-finite numbers as null), written
    atomically."""
    write_text_atomic(path, json.dumps(jsonable(value), indent=2, allow_nan=False) + "\n")


def read_history(run_dir: Path) -> list[dict]:
    """history.csv of a run folder as one dict per epoch ([] where there is none: classical
    models); DataError for a file that is not what the trainer writes."""
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a history table ({exc})") from None
    history = []
    for line, row in enumerate(rows, start=2):
        if None in row or None in row.values():  # more or fewer fields than the header names
            raise DataError(f"{path}: line {line} does not have one value per column of the header")
        # what every epoch of a run records, and the plots read from every row
        required = ["epoch", "loss", "accuracy", *(k for k in CURVE_KEYS if k in row)]
        blank = [k for k in required if not row.get(k)]
        if blank:
            raise DataError(f"{path}: line {line} has no value for {', '.join(sorted(blank))}")
        try:
            history.append(
                {k: (float(v) if k != "epoch" else int(float(v))) for k, v in row.items() if v}
            )
        except ValueError as exc:
            raise DataError(f"{path}: line {line} is not a row of numbers ({exc})") from None
    return history


def finished_metrics(run_dir: Path) -> dict | None:
    """metrics.json of a run that finished what its checkpoint holds: written for as many
    epochs as the checkpoint completed (a model without checkpoints: written at all). None for
    a run still to train (a resume with more epochs, killed) or one whose files cannot be read.
    """
    try:
        metrics = read_json(run_dir / "metrics.json")
    except DataError:
        return None
    checkpoint = run_dir / "checkpoint.npz"
    if not checkpoint.exists():
        return metrics
    try:
        done = (read_npz_meta(checkpoint) or {}).get("epoch")
    except DataError:
        return None
    return metrics if metrics.get("epochs_run") == done else None


# ---------------------------------------------------------------------- the claim


@contextlib.contextmanager
def claim_run_folder(run_dir: Path, *, new: bool) -> Iterator[None]:
    """Hold `run_dir` (made if missing) for one run, released when the block ends or the
    process dies. UsageError if another process holds it, or, for a `new` run, if the folder
    already holds a run (checked again under the claim: two runs started at the same moment
    both passed the check made before their data loaded). Temporary files that killed writes
    left behind are removed once the claim is held."""
    run_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock(descriptor, run_dir)
        if new and (run_dir / "config.json").exists():
            raise UsageError(
                f"{run_dir} already holds a run; choose another folder or continue it with "
                f"--resume {run_dir}"
            )
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()} {socket.gethostname()}\n".encode())
        remove_temporaries(run_dir)
        yield
    finally:
        os.close(descriptor)


def _lock(descriptor: int, run_dir: Path) -> None:
    deadline = time.monotonic() + CLAIM_WAIT
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                pid, host = claim_owner(run_dir)
                owner = f" (process {pid} on {host})" if pid is not None else ""
                raise UsageError(
                    f"{run_dir}: another mnistlab run is working in this folder{owner}; wait "
                    f"for it to end or choose another folder"
                ) from None
            time.sleep(0.05)


def claim_owner(run_dir: Path) -> tuple[int | None, str | None]:
    """(pid, host) of the process that last claimed `run_dir`, or (None, None)."""
    try:
        pid, host = (run_dir / LOCK_NAME).read_text(encoding="utf-8").split()
        return int(pid), host
    except (OSError, ValueError, UnicodeDecodeError):
        return None, None


def run_folder_in_use(run_dir: Path) -> bool | None:
    """Whether a live process holds `run_dir`'s claim; None where there is no claim file to
    ask (no such folder, or one written before claims existed)."""
    try:
        descriptor = os.open(Path(run_dir) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return False
    finally:
        os.close(descriptor)


def remove_temporaries(run_dir: Path) -> list[Path]:
    """Delete the temporary files of writes killed midway (`.name.XXXXXXXX.tmp.suffix`, as
    mnistlab._io.atomic_path names them); only while holding the folder's claim."""
    removed = []
    for path in run_dir.iterdir():
        if path.name.startswith(".") and ".tmp" in path.name and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def check_same_split(config: dict, run_dir: Path) -> None:
    """UsageError when the resumed configuration would hold out another validation split than
    the run trained with: a run recorded without a split (validation null, from before its
    preset held one out) whose preset now holds one out would train on other rows."""
    try:
        previous = read_json(run_dir / "config.json")
    except DataError:
        return
    if "validation" not in previous or no_validation(previous["validation"]):
        if not no_validation(config.get("validation")):
            raise UsageError(
                f"--resume {run_dir}: the run trained on every training image, but its preset "
                f"{config.get('preset')!r} now holds out validation={config['validation']:g}; "
                f'set "validation": 0 in {run_dir / "config.json"} to resume it as it was'
            )
