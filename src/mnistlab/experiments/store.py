"""The run store: one SQLite database (`runs.db`, WAL mode) with a row per training run.

Each row holds the run's configuration, status (running, finished, failed), timing, machine, final
metrics and per-epoch history. Many processes may write at once: every write is one short
`BEGIN IMMEDIATE` transaction, retried while another writer holds the lock, and WAL keeps readers
and a killed writer from corrupting anything (a transaction either commits whole or not at all).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from mnistlab.errors import DataError, UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_dir TEXT NOT NULL,
    study TEXT,
    trial TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
    config TEXT NOT NULL,
    metrics TEXT,
    history TEXT,
    machine TEXT,
    error TEXT,
    started REAL NOT NULL,
    finished REAL,
    seconds REAL
);
CREATE INDEX IF NOT EXISTS runs_study ON runs (study, trial);
"""
#: metrics that may be used to sort `mnistlab runs list`
SORTABLE = (
    "test_accuracy",
    "test_loss",
    "test_errors",
    "train_seconds",
    "val_accuracy",
    "val_loss",
    "id",
    "started",
)


def default_store_path(run_dir: str | os.PathLike) -> Path:
    """Where a run records itself: runs.db in the folder that holds the run folder."""
    return Path(run_dir).resolve().parent / "runs.db"


class RunStore:
    """A handle on runs.db; open one per process (connections are not shared across forks)."""

    def __init__(self, path: str | os.PathLike, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connection = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._create_schema()
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path}: not a usable run store ({exc})") from None

    def _create_schema(self) -> None:
        # executescript commits on its own, so it runs outside _write, retried while locked
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._connection.executescript(SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def close(self) -> None:
        """Close the database connection (leaving the ``with`` block does it too)."""
        self._connection.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, action):
        """Run `action(connection)` in one IMMEDIATE transaction, retrying while locked."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                try:
                    result = action(self._connection)
                    self._connection.execute("COMMIT")
                    return result
                except BaseException:
                    self._connection.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise DataError(f"{self.path}: still locked after {self.timeout:g} s") from None
                time.sleep(0.01)

    # ------------------------------------------------------------------ writing

    def start(
        self, run_dir, config: dict, *, study: str | None = None, trial: str | None = None
    ) -> int:
        """Record a run as running; returns its id."""

        def insert(c):
            cursor = c.execute(
                "INSERT INTO runs (run_dir, study, trial, status, config, started) "
                "VALUES (?, ?, ?, 'running', ?, ?)",
                (str(run_dir), study, trial, json.dumps(config, sort_keys=True), time.time()),
            )
            return int(cursor.lastrowid)

        return self._write(insert)

    def finish(self, run_id: int, metrics: dict, history: list[dict] | None = None) -> None:
        """Mark run `run_id` finished with its `metrics` (their ``machine`` entry kept in a
        column of its own), its per-epoch `history` and its seconds since it started."""
        machine = metrics.get("machine")
        self._write(
            lambda c: c.execute(
                "UPDATE runs SET status='finished', metrics=?, history=?, machine=?, finished=?, "
                "seconds=? - started WHERE id=?",
                (
                    json.dumps({k: v for k, v in metrics.items() if k != "machine"}),
                    json.dumps(history or []),
                    json.dumps(machine),
                    time.time(),
                    time.time(),
                    run_id,
                ),
            )
        )

    def restart(self, run_dir, config: dict | None = None) -> int | None:
        """Mark the latest row of `run_dir` running again (a resumed run, whose configuration
        becomes `config` when given: more epochs); its id, or None."""
        row = self._connection.execute(
            "SELECT id FROM runs WHERE run_dir=? ORDER BY id DESC LIMIT 1", (str(run_dir),)
        ).fetchone()
        if row is None:
            return None
        text = None if config is None else json.dumps(config, sort_keys=True)
        self._write(
            lambda c: c.execute(
                "UPDATE runs SET status='running', error=NULL, config=COALESCE(?, config) "
                "WHERE id=?",
                (text, row[0]),
            )
        )
        return int(row[0])

    def fail(self, run_id: int, error: str) -> None:
        """Mark run `run_id` failed, with the `error` that stopped it."""
        self._write(
            lambda c: c.execute(
                "UPDATE runs SET status='failed', error=?, finished=?, seconds=? - started "
                "WHERE id=?",
                (error, time.time(), time.time(), run_id),
            )
        )

    # ------------------------------------------------------------------ reading

    def get(self, run_id: int) -> dict:
        """Run `run_id`'s row as a dict (config, metrics, history and machine decoded from
        JSON); UsageError when there is none."""
        row = self._connection.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise UsageError(f"no run with id {run_id} in {self.path}")
        return self._row(row)

    def latest(self, run_dir) -> dict | None:
        """The newest row recorded for `run_dir`, or None."""
        row = self._connection.execute(
            "SELECT * FROM runs WHERE run_dir=? ORDER BY id DESC LIMIT 1", (str(run_dir),)
        ).fetchone()
        return None if row is None else self._row(row)

    def list(
        self, *, study: str | None = None, sort: str = "id", status: str | None = None
    ) -> list[dict]:
        """The rows, optionally of one `study` or `status`, sorted by `sort` (one of SORTABLE:
        id and started ascending, accuracies descending, other metrics ascending; rows without
        the metric last)."""
        if sort not in SORTABLE:
            raise UsageError(f"--sort must be one of {', '.join(SORTABLE)}, got {sort!r}")
        query, params = "SELECT * FROM runs", []
        clauses = []
        if study is not None:
            clauses.append("study = ?")
            params.append(study)
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        rows = [self._row(r) for r in self._connection.execute(query, params)]
        if sort in ("id", "started"):
            return sorted(rows, key=lambda r: r[sort])
        descending = sort in ("test_accuracy", "val_accuracy")
        present = [r for r in rows if (r["metrics"] or {}).get(sort) is not None]
        missing = [r for r in rows if (r["metrics"] or {}).get(sort) is None]
        present.sort(key=lambda r: r["metrics"][sort], reverse=descending)
        return present + missing

    def _row(self, row) -> dict:
        names = [d[0] for d in self._connection.execute("SELECT * FROM runs LIMIT 0").description]
        record = dict(zip(names, row, strict=True))
        for key in ("config", "metrics", "history", "machine"):
            record[key] = json.loads(record[key]) if record[key] else None
        return record
