"""Reading and writing the files of a run folder: its JSON files and history.csv.

A run folder holds config.json, dataset.json, model.json and weights.npz, history.csv (models
trained epoch by epoch), metrics.json, and checkpoint.npz while the run can still be resumed.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from mnistlab._io import write_text_atomic
from mnistlab.errors import DataError

#: history columns that, where the header has them, every row must fill
CURVE_KEYS = ("val_loss", "val_accuracy")


def write_json(path: Path, value) -> None:
    """`value` as indented JSON (NumPy scalars as Python numbers), written atomically."""
    write_text_atomic(path, json.dumps(value, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def read_json(path: Path) -> dict:
    """A JSON file of a finished run; DataError for one that is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: missing (is {path.parent} a finished run folder?)") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def read_history(run_dir: Path) -> list[dict]:
    """history.csv of a run folder as one dict per epoch ([] where there is none: classical
    models); DataError for a file that is not what the trainer writes."""
    path = run_dir / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
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
