"""History: one record per completed epoch (loss, accuracy, validation scores, timing).

A fitted model's ``history_`` is a :class:`History`. It reads like a small table::

    history = model.history_
    history.columns            # ['epoch', 'loss', 'accuracy', 'val_loss', ...]
    history["val_accuracy"]    # one column: a list, one value per epoch
    history[-1]                # one record: the last epoch's dict
    history.to_dict()          # {column: list}
    history.to_csv("h.csv")    # the file a run folder's history.csv is
    history.to_pandas()        # a pandas DataFrame, when pandas is installed

In a notebook it shows as an HTML table.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mnistlab._io import write_text_atomic

#: the columns the trainer records, in the order every table and history.csv shows them
HISTORY_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")
#: a history longer than this shows its first and last rows only (repr and HTML)
SHOWN_ROWS = 20


@dataclass(repr=False)
class History:
    """Per-epoch records, one dict each, as the trainer appends them.

    Each record holds ``epoch`` (1-based; softmax regression's ``gd`` solver records the
    iteration), ``loss`` and ``accuracy`` on the training rows, ``val_loss`` and
    ``val_accuracy`` when there is validation data, ``learning_rate`` at the end of the epoch
    and ``seconds`` (the epoch's training steps). A record may lack a key the others have; its
    value in a column is then None.

    Parameters
    ----------
    records : list of dict
        The records, oldest first. A checkpoint stores this list as it is.
    """

    records: list[dict] = field(default_factory=list)

    def append(self, record: dict) -> None:
        """Add one epoch's record at the end."""
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records)

    def __getitem__(self, key: str | int) -> list | dict:
        """``history["loss"]``: a column as a list; ``history[-1]``: a record (a dict)."""
        if isinstance(key, str):
            if key not in self.columns:
                raise KeyError(
                    f"no column {key!r} in this history; its columns are "
                    f"{', '.join(self.columns) or '(none: it has no records)'}"
                )
            return self.column(key)
        return self.records[key]

    @property
    def columns(self) -> list[str]:
        """The keys that any record has: the trainer's keys in `HISTORY_KEYS` order, then any
        other key (one a callback added) in the order it first appears."""
        seen: dict[str, None] = {}
        for record in self.records:
            seen.update(dict.fromkeys(record))
        known = [k for k in HISTORY_KEYS if k in seen]
        return known + [k for k in seen if k not in HISTORY_KEYS]

    def column(self, key: str) -> list:
        """The values of `key`, one per record (None where a record lacks it)."""
        return [r.get(key) for r in self.records]

    def to_dict(self) -> dict[str, list]:
        """The history as ``{column: [one value per epoch]}``, columns as in `columns`."""
        return {key: self.column(key) for key in self.columns}

    def to_csv(self, path: str | os.PathLike | None = None) -> str | Path:
        """The history as CSV: a header of the columns, then one row per epoch.

        Floats are written with 6 significant digits and a missing value as an empty field;
        this is the format of a run folder's history.csv.

        Parameters
        ----------
        path : str or path-like, optional
            Where to write the file (atomically: a temporary file renamed).

        Returns
        -------
        str or pathlib.Path
            The CSV text when `path` is None, otherwise the path written.
        """
        keys = self.columns
        lines = [",".join(keys)]
        for record in self.records:
            lines.append(",".join(_fmt(record.get(k)) for k in keys))
        text = "\n".join(lines) + "\n"
        if path is None:
            return text
        path = Path(path)
        write_text_atomic(path, text)
        return path

    def to_pandas(self):
        """The history as a pandas DataFrame: one row per epoch, one column per key.

        Returns
        -------
        pandas.DataFrame

        Raises
        ------
        ImportError
            When pandas is not installed (`to_dict` and `to_csv` need nothing).
        """
        try:
            import pandas
        except ImportError:
            raise ImportError(
                "History.to_pandas() needs pandas, which is not installed; install it "
                "(pip install pandas) or use history.to_dict() or history.to_csv() instead"
            ) from None
        return pandas.DataFrame(self.to_dict(), columns=self.columns)

    def __repr__(self) -> str:
        count = len(self.records)
        title = f"History: {count} epoch{'s' if count != 1 else ''}"
        if not count:
            return title
        keys = self.columns
        rows = [[_short(r.get(k)) for k in keys] if r else None for r in self._shown()]
        widths = [max(len(row[i]) for row in [keys, *rows] if row) for i in range(len(keys))]
        lines = [title]
        for row in [keys, *rows]:
            shown = row if row else ["..."] * len(keys)
            lines.append("  ".join(v.rjust(w) for v, w in zip(shown, widths, strict=True)))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """An HTML table, which Jupyter shows for a History that ends a cell."""
        count = len(self.records)
        caption = f"History: {count} epoch{'s' if count != 1 else ''}"
        keys = self.columns
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        rows = []
        for record in self._shown():
            values = ["..."] * len(keys) if not record else [_short(record.get(k)) for k in keys]
            rows.append("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in values) + "</tr>")
        return (
            f"<table><caption>{html.escape(caption)}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def _shown(self) -> list[dict]:
        """The records a repr shows: all, or the first and last halves of SHOWN_ROWS with an
        empty dict standing for the rows left out."""
        if len(self.records) <= SHOWN_ROWS:
            return self.records
        half = SHOWN_ROWS // 2
        return self.records[:half] + [{}] + self.records[-half:]


def _fmt(value) -> str:
    """A value as history.csv writes it."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _short(value) -> str:
    """A value as a table on screen shows it: floats to 4 significant digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
