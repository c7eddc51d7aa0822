"""The SQLite run store: rows from single runs, many concurrent writers, a killed writer."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time

import pytest

from mnistlab.cli import main
from mnistlab.errors import UsageError
from mnistlab.experiments.store import RunStore


def _writer(path: str, worker: int, rows: int) -> None:
    with RunStore(path) as store:
        for i in range(rows):
            run_id = store.start(
                f"/runs/w{worker}-{i}",
                {"worker": worker, "i": i},
                study="concurrency",
                trial=f"{worker}-{i}",
            )
            store.finish(
                run_id,
                {"test_accuracy": worker + i / 100, "machine": {"cores": 2}},
                [{"epoch": 1, "loss": 0.5}],
            )


def _slow_writer(path: str) -> None:
    with RunStore(path) as store:
        while True:
            run_id = store.start("/runs/doomed", {"doomed": True}, study="concurrency")
            store.finish(run_id, {"test_accuracy": 0.0})


def test_eight_concurrent_writers_and_a_killed_one_lose_nothing(tmp_path):
    path = str(tmp_path / "runs.db")
    RunStore(path).close()
    context = multiprocessing.get_context("spawn")
    victim = context.Process(target=_slow_writer, args=(path,))
    victim.start()
    writers = [context.Process(target=_writer, args=(path, w, 25)) for w in range(8)]
    for process in writers:
        process.start()
    time.sleep(0.5)
    os.kill(victim.pid, signal.SIGKILL)  # killed wherever it is, possibly mid-transaction
    for process in writers:
        process.join(timeout=120)
        assert process.exitcode == 0
    victim.join(timeout=10)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with RunStore(path) as store:
        rows = [r for r in store.list(study="concurrency") if r["run_dir"] != "/runs/doomed"]
        assert len(rows) == 8 * 25
        assert all(r["status"] == "finished" for r in rows)
        assert {r["trial"] for r in rows} == {f"{w}-{i}" for w in range(8) for i in range(25)}
        assert rows[0]["history"] == [{"epoch": 1, "loss": 0.5}]
        best = store.list(study="concurrency", sort="test_accuracy")[0]
        assert best["metrics"]["test_accuracy"] == pytest.approx(7.24)


def test_single_runs_record_themselves_and_the_cli_reads_them(tmp_path, capsys):
    for model in ("knn", "gaussian"):
        assert (
            main(
                [
                    "train",
                    "--dataset",
                    "digits",
                    "--model",
                    model,
                    "--quiet",
                    "--out",
                    str(tmp_path / model),
                ]
            )
            == 0
        )
    db = str(tmp_path / "runs.db")
    capsys.readouterr()
    assert main(["runs", "list", "--db", db, "--sort", "test_loss"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 3 and "knn" in listing[1] and "finished" in listing[1]
    assert main(["runs", "show", "2", "--db", db]) == 0
    assert '"model": "gaussian"' in capsys.readouterr().out
    assert main(["runs", "compare", "1", "2", "--db", db]) == 0
    compared = capsys.readouterr().out
    assert "model" in compared and "test_accuracy" in compared and "dataset" not in compared
    # a filter that matches nothing says so instead of printing a bare header
    assert main(["runs", "list", "--db", db, "--status", "failed"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err == f"no runs with status 'failed' in {db}\n"
    with RunStore(db) as store:
        store.start(tmp_path / "elsewhere", {"model": "mlp"}, study="depth", trial="a")
    assert main(["runs", "list", "--db", db, "--study", "lr"]) == 0
    assert capsys.readouterr().err == f"no runs of study 'lr' in {db} (its studies: depth)\n"


def test_a_failed_run_is_recorded_as_failed(tmp_path):
    assert (
        main(
            [
                "train",
                "--dataset",
                "digits",
                "--hidden",
                "16",
                "--activation",
                "tanh",
                "--optimizer",
                "sgd",
                "--lr",
                "1e36",
                "--epochs",
                "2",
                "--quiet",
                "--out",
                str(tmp_path / "diverged"),
            ]
        )
        == 1
    )
    with RunStore(tmp_path / "runs.db") as store:
        (record,) = store.list()
    assert record["status"] == "failed" and "loss became" in record["error"]


def test_store_errors(tmp_path, capsys):
    assert main(["runs", "list", "--db", str(tmp_path / "none.db")]) == 2
    assert "no run store there" in capsys.readouterr().err
    with RunStore(tmp_path / "runs.db") as store:
        with pytest.raises(UsageError, match="no run with id 5"):
            store.get(5)
        with pytest.raises(UsageError, match="--sort must be one of"):
            store.list(sort="colour")
    (tmp_path / "bad.db").write_bytes(b"this is not sqlite" * 100)
    assert main(["runs", "list", "--db", str(tmp_path / "bad.db")]) == 2
    assert "not a usable run store" in capsys.readouterr().err


OLD_SCHEMA = """
CREATE TABLE runs (
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
CREATE INDEX runs_study ON runs (study, trial);
"""


def test_a_run_store_from_before_pid_host_and_interrupted_opens_and_keeps_its_rows(tmp_path):
    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as raw:
        raw.executescript(OLD_SCHEMA)
        for i in range(3):
            raw.execute(
                "INSERT INTO runs (run_dir, study, status, config, metrics, started) "
                "VALUES (?, 'old', 'finished', '{\"model\": \"mlp\"}', ?, 1.0)",
                (f"/runs/{i}", '{"test_accuracy": 0.5}'),
            )
        raw.execute("DELETE FROM runs WHERE id = 3")
    with RunStore(path) as store:
        rows = store.list(study="old")
        assert [(r["id"], r["status"], r["pid"]) for r in rows] == [
            (1, "finished", None),
            (2, "finished", None),
        ]
        assert rows[0]["metrics"] == {"test_accuracy": 0.5}
        new = store.start("/runs/new", {"model": "knn"})
        assert new == 4  # a removed row's id is never given again, migrated or not
        store.interrupt(new, "interrupted: Ctrl-C")
        assert store.get(new)["status"] == "interrupted" and store.get(new)["pid"] == os.getpid()
    with RunStore(path) as store:  # opening it again migrates nothing
        assert len(store.list()) == 3
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert raw.execute("SELECT name FROM sqlite_master WHERE type='index'").fetchall() == [
            ("runs_study",)
        ]
