"""The run store: one SQLite database (`runs.db`, WAL mode) with a row per training run.

Each row holds the run's configuration, status (running, finished, failed, interrupted), timing,
machine, final metrics and per-epoch history, and the process (pid and host) that runs it. Many
processes may write at once: every write is one short `BEGIN IMMEDIATE` transaction, retried while
another writer holds the lock, and WAL keeps readers and a killed writer from corrupting anything
(a transaction either commits whole or not at all).

A row is written by its run as it starts and ends; a run killed in between leaves it 'running'.
`RunStore.reconcile` repairs such rows from what outlives the process: the run folder's claim
(`run_folder.run_folder_in_use`) says whether the run is alive, its files whether it finished.
A runs.db written before the 'interrupted' status and the pid and host columns is migrated when
it is opened.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from pathlib import Path

from mnistlab.errors import DataError, UsageError
from mnistlab.experiments.run_folder import (
    finished_metrics,
    jsonable,
    read_history,
    run_folder_in_use,
)

STATUSES = ("running", "finished", "failed", "interrupted")
TABLE = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_dir TEXT NOT NULL,
    study TEXT,
    trial TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
    config TEXT NOT NULL,
    metrics TEXT,
    history TEXT,
    machine TEXT,
    error TEXT,
    started REAL NOT NULL,
    finished REAL,
    seconds REAL,
    pid INTEGER,
    host TEXT
);
"""
INDEX = "CREATE INDEX IF NOT EXISTS runs_study ON runs (study, trial);"
SCHEMA = TABLE + INDEX
#: seconds a write waits for another writer's lock before giving up
LOCK_TIMEOUT = 60.0
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
    """A handle on runs.db; open one per process (connections are not shared across forks).

    timeout: seconds a write waits for another writer (None: LOCK_TIMEOUT).
    """

    def __init__(self, path: str | os.PathLike, timeout: float | None = None) -> None:
        self.path = Path(path)
        self.timeout = LOCK_TIMEOUT if timeout is None else timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connection = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._create_schema()
            if self._needs_migration(self._connection):
                self._write(self._migrate)
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

    @staticmethod
    def _needs_migration(connection) -> bool:
        """Whether the runs table predates the 'interrupted' status and the pid and host
        columns (SQLite cannot alter a CHECK constraint: the table is rebuilt)."""
        row = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type='table' AND name='runs'"
        ).fetchone()
        return row is not None and "'interrupted'" not in row[0]

    def _migrate(self, connection) -> None:
        """Rebuild the runs table in the current schema, keeping every row and id (inside one
        transaction: a process that opens the store meanwhile waits, then finds it done)."""
        if not self._needs_migration(connection):
            return
        columns = ", ".join(r[1] for r in connection.execute("PRAGMA table_info(runs)"))
        # the id counter too: AUTOINCREMENT never gives a removed row's id to another
        counter = connection.execute("SELECT seq FROM sqlite_sequence WHERE name='runs'").fetchone()
        connection.execute(TABLE.replace("IF NOT EXISTS runs", "runs_migrated"))
        connection.execute(
            f"INSERT INTO runs_migrated ({columns}) SELECT {columns} FROM runs ORDER BY id"
        )
        connection.execute("DROP TABLE runs")
        connection.execute("ALTER TABLE runs_migrated RENAME TO runs")
        connection.execute(INDEX)
        if counter is not None:
            connection.execute("DELETE FROM sqlite_sequence WHERE name='runs'")
            connection.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('runs', ?)", (counter[0],)
            )

    def close(self) -> None:
        """Close the database connection (leaving the ``with`` block does it too)."""
        self._connection.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, action):
        """Run `action(connection)` in one IMMEDIATE transaction, retrying while locked.
        DataError naming the database for any other failure (a full disk, a damaged file)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                try:
                    result = action(self._connection)
                    self._connection.execute("COMMIT")
                    return result
                finally:
                    # SQLite rolls some failed transactions back itself (a full disk does): a
                    # second ROLLBACK would fail and hide the error that matters
                    if self._connection.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._connection.execute("ROLLBACK")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise DataError(f"{self.path}: {exc}") from None
                if time.monotonic() > deadline:
                    raise DataError(f"{self.path}: still locked after {self.timeout:g} s") from None
                time.sleep(0.01)
            except sqlite3.DatabaseError as exc:
                raise DataError(f"{self.path}: {exc}") from None

    def _read(self, query: str, params=()) -> list:
        try:
            return self._connection.execute(query, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path}: {exc}") from None

    # ------------------------------------------------------------------ writing

    def start(
        self, run_dir, config: dict, *, study: str | None = None, trial: str | None = None
    ) -> int:
        """Record a run as running in this process; returns its id."""

        def insert(c):
            cursor = c.execute(
                "INSERT INTO runs (run_dir, study, trial, status, config, started, pid, host) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?)",
                (
                    str(run_dir),
                    study,
                    trial,
                    json.dumps(jsonable(config), sort_keys=True),
                    time.time(),
                    os.getpid(),
                    socket.gethostname(),
                ),
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
                    json.dumps(jsonable({k: v for k, v in metrics.items() if k != "machine"})),
                    json.dumps(jsonable(history or [])),
                    json.dumps(jsonable(machine)),
                    time.time(),
                    time.time(),
                    run_id,
                ),
            )
        )

    def restart(self, run_dir, config: dict | None = None) -> int | None:
        """Mark the latest row of `run_dir` running again in this process (a resumed run,
        whose configuration becomes `config` when given: more epochs); its id, or None."""
        rows = self._read(
            "SELECT id FROM runs WHERE run_dir=? ORDER BY id DESC LIMIT 1", (str(run_dir),)
        )
        if not rows:
            return None
        text = None if config is None else json.dumps(jsonable(config), sort_keys=True)
        self._write(
            lambda c: c.execute(
                "UPDATE runs SET status='running', error=NULL, config=COALESCE(?, config), "
                "pid=?, host=? WHERE id=?",
                (text, os.getpid(), socket.gethostname(), rows[0][0]),
            )
        )
        return int(rows[0][0])

    def fail(self, run_id: int, error: str) -> None:
        """Mark run `run_id` failed, with the `error` that stopped it."""
        self._end(run_id, "failed", error)

    def interrupt(self, run_id: int, message: str) -> None:
        """Mark run `run_id` interrupted (Ctrl-C, SIGTERM, a process gone): it can resume."""
        self._end(run_id, "interrupted", message)

    def _end(self, run_id: int, status: str, error: str) -> None:
        self._write(
            lambda c: c.execute(
                "UPDATE runs SET status=?, error=?, finished=?, seconds=? - started WHERE id=?",
                (status, error, time.time(), time.time(), run_id),
            )
        )

    def remove(self, run_ids) -> int:
        """Delete the rows `run_ids` (never their run folders); how many there were."""
        ids = [int(i) for i in run_ids]
        marks = ", ".join("?" * len(ids))
        return self._write(
            lambda c: c.execute(f"DELETE FROM runs WHERE id IN ({marks})", ids).rowcount
        )

    # ------------------------------------------------------------------ repair

    def reconcile(self) -> dict[str, int]:
        """Bring the 'running' rows whose run is no longer alive up to date with their run
        folder: finished (metrics.json for every epoch its checkpoint holds; failed if that
        run diverged) or interrupted. Returns how many rows became each."""
        changed = {"finished": 0, "failed": 0, "interrupted": 0}
        for row in self.list(status="running"):
            if _alive(row):
                continue
            run_dir = Path(row["run_dir"])
            metrics = finished_metrics(run_dir)
            if metrics is None:
                status = "interrupted"
                error = (
                    f"interrupted: its process ({_process(row)}) is gone; continue it with "
                    f"mnistlab train --resume {run_dir}"
                )
            elif metrics.get("diverged"):
                status, error = "failed", f"RunDiverged: {metrics.get('stop_reason')}"
            else:
                status, error = "finished", None
            if self._settle(row, status, error, metrics, run_dir):
                changed[status] += 1
        return changed

    def _settle(self, row: dict, status: str, error, metrics, run_dir: Path) -> bool:
        """Update `row` to `status` (with the folder's `metrics`, if any) unless it changed
        since it was read (a resume that took it over meanwhile); whether it was updated."""
        history = None
        if status == "finished":
            with contextlib.suppress(DataError):
                history = read_history(run_dir)
        values = {
            "status": status,
            "error": error,
            "metrics": None,
            "history": None if history is None else json.dumps(jsonable(history)),
            "machine": None,
            "now": time.time(),
            "id": row["id"],
            "pid": row.get("pid"),
            "host": row.get("host"),
        }
        if metrics is not None:
            kept = {k: v for k, v in metrics.items() if k != "machine"}
            values["metrics"] = json.dumps(jsonable(kept))
            values["machine"] = json.dumps(jsonable(metrics.get("machine")))

        def update(c) -> bool:
            cursor = c.execute(
                "UPDATE runs SET status=:status, error=:error, "
                "metrics=COALESCE(:metrics, metrics), history=COALESCE(:history, history), "
                "machine=COALESCE(:machine, machine), finished=:now, seconds=:now - started "
                "WHERE id=:id AND status='running' AND pid IS :pid AND host IS :host",
                values,
            )
            return cursor.rowcount == 1

        return self._write(update)

    # ------------------------------------------------------------------ reading

    def get(self, run_id: int) -> dict:
        """Run `run_id`'s row as a dict (config, metrics, history and machine decoded from
        JSON); UsageError when there is none."""
        rows = self._read("SELECT * FROM runs WHERE id=?", (run_id,))
        if not rows:
            raise UsageError(f"no run with id {run_id} in {self.path}")
        return self._row(rows[0])

    def latest(self, run_dir) -> dict | None:
        """The newest row recorded for `run_dir`, or None."""
        rows = self._read(
            "SELECT * FROM runs WHERE run_dir=? ORDER BY id DESC LIMIT 1", (str(run_dir),)
        )
        return self._row(rows[0]) if rows else None

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
        rows = [self._row(r) for r in self._read(query, params)]
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
            try:
                record[key] = json.loads(record[key]) if record[key] else None
            except (TypeError, ValueError):
                raise DataError(
                    f"{self.path}: run {record.get('id')} holds a damaged {key} column"
                ) from None
        return record


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _alive(row: dict) -> bool:
    """Whether the run of a 'running' row may still be at work. Its folder's claim says so
    where there is one; else its process id, where it ran on this machine; else (another
    machine, or a row from before claims) it cannot be told, and counts as alive."""
    in_use = run_folder_in_use(Path(row["run_dir"]))
    if in_use is not None:
        return in_use
    if row.get("host") == socket.gethostname() and row.get("pid"):
        return _pid_alive(int(row["pid"]))
    return True


def _process(row: dict) -> str:
    if row.get("pid"):
        return f"pid {row['pid']} on {row.get('host')}"
    return "the process that started it"
