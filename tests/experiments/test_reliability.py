"""Races and lost work around a run folder: two runs on one folder, SIGTERM, a run killed after
its metrics, stale temporary files, a locked or full store, JSON files of the wrong shape, and the
store's repair path (`runs list` reconciles, `runs rm`)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.errors import DataError, RunDiverged, TrainingInterrupted, UsageError
from mnistlab.experiments import run_folder
from mnistlab.experiments import store as store_module
from mnistlab.experiments.config import resolve_config
from mnistlab.experiments.run_folder import claim_run_folder, read_json, write_json
from mnistlab.experiments.runs import train_run
from mnistlab.experiments.store import RunStore
from mnistlab.train.checkpoint import load_npz, save_npz

SMALL = ["--dataset", "digits", "--hidden", "16", "--epochs", "2", "--quiet"]


def _config(**overrides) -> dict:
    return resolve_config({"dataset": "digits", "hidden": [16], "epochs": 2, **overrides})


def _quiet(*args, **kwargs) -> None:
    pass


def _stub_report(run_dir: Path, data) -> Path:
    """A report hook that costs nothing (the real one draws a dozen figures)."""
    path = run_dir / "report.html"
    path.write_text("<html>report</html>", encoding="utf-8")
    return path


def _weights(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(run_dir / "weights.npz") as archive:
        return {key: archive[key].copy() for key in archive.files}


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert sorted(wa) == sorted(wb)
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key])


def _rows(db: Path) -> list[dict]:
    with RunStore(db) as store:
        return store.list()


def _reaped() -> int:
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------------- the claim


def test_two_train_commands_on_one_out_at_the_same_moment(tmp_path):
    """Two real processes: exactly one trains, the other gets one line and exit 2, and the
    folder holds one run's files (before the claim both passed the check and mixed them)."""
    out = tmp_path / "run"
    hidden = {0: 16, 1: 12}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "mnistlab", "train", "--dataset", "digits", "--hidden",
             str(hidden[i]), "--epochs", "2", "--quiet", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]  # fmt: skip
    results = [(*p.communicate(timeout=300), p.returncode) for p in processes]
    codes = [code for _, _, code in results]
    assert sorted(codes) == [0, 2], results
    winner = codes.index(0)
    line = _one_line(results[1 - winner][1])
    assert "already holds a run" in line or "another mnistlab run is working" in line, line
    assert read_json(out / "config.json")["hidden"] == [hidden[winner]]
    shapes = {array.shape for array in _weights(out).values()}
    assert (64, hidden[winner]) in shapes and (64, hidden[1 - winner]) not in shapes
    assert read_json(out / "model.json")  # written by the same run as the weights
    (row,) = _rows(tmp_path / "runs.db")
    assert row["status"] == "finished" and row["config"]["hidden"] == [hidden[winner]]


def test_a_claimed_run_folder_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_folder, "CLAIM_WAIT", 0.1)
    out = tmp_path / "run"
    with claim_run_folder(out, new=True):
        assert main(["train", *SMALL, "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{out}: another mnistlab run is working in this folder (process {os.getpid()}" in line
    assert not (out / "config.json").exists() and not (tmp_path / "runs.db").exists()


def test_a_new_run_into_a_folder_that_holds_one_is_refused_under_the_claim(tmp_path):
    out = tmp_path / "run"
    train_run(_config(), out, store=False, echo=_quiet)
    before = (out / "weights.npz").stat().st_mtime_ns
    with pytest.raises(UsageError, match="already holds a run; .* --resume"):
        train_run(_config(), out, echo=_quiet)
    assert (out / "weights.npz").stat().st_mtime_ns == before
    assert not (tmp_path / "runs.db").exists()


def test_stale_temporary_files_are_removed_when_a_run_starts_or_resumes(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    stale = [".checkpoint.k1x9q2aa.tmp.npz", ".metrics.0abc1234.tmp.json", ".report.zz.tmp.html"]
    for name in [*stale, "notes.txt"]:
        (out / name).write_text("left by a kill", encoding="utf-8")
    train_run(_config(epochs=1), out, store=False, echo=_quiet)
    assert sorted(p.name for p in out.iterdir() if ".tmp" in p.name) == []
    assert (out / "notes.txt").exists()
    (out / stale[0]).write_bytes(b"PK")
    train_run(_config(epochs=2), out, resume=True, store=False, echo=_quiet)
    assert not (out / stale[0]).exists()


# ---------------------------------------------------------------------- lost work


def test_a_run_killed_after_its_metrics_is_completed_by_resume(tmp_path, capsys):
    out, db = tmp_path / "run", tmp_path / "runs.db"
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    weights_written = (out / "weights.npz").stat().st_mtime_ns
    metrics = read_json(out / "metrics.json")
    # as a kill after metrics.json leaves it: no report, the row still running
    (out / "report.html").unlink()
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE runs SET status='running', pid=?", (_reaped(),))
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--quiet"]) == 0  # was "nothing to resume"
    assert (out / "report.html").is_file() and "report" in capsys.readouterr().out
    assert (out / "weights.npz").stat().st_mtime_ns == weights_written  # nothing retrained
    assert read_json(out / "metrics.json") == metrics
    (row,) = _rows(db)
    assert row["status"] == "finished" and row["pid"] == os.getpid()
    # killed after its report, before its row: the row alone is completed
    report_written = (out / "report.html").stat().st_mtime_ns
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE runs SET status='running', pid=?", (_reaped(),))
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert (out / "report.html").stat().st_mtime_ns == report_written
    assert _rows(db)[0]["status"] == "finished"
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--quiet"]) == 2  # now complete
    assert "nothing to resume" in capsys.readouterr().err


def test_resume_of_a_checkpoint_whose_epoch_is_not_a_number_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    train_run(_config(), out, store=False, echo=_quiet)
    arrays, meta = load_npz(out / "checkpoint.npz")
    save_npz(out / "checkpoint.npz", arrays, {**meta, "epoch": "three"})
    assert main(["train", "--resume", str(out), "--epochs", "4", "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{out / 'checkpoint.npz'}: the checkpoint's epoch is 'three', not a whole" in line


def test_sigterm_in_training_and_in_the_report_loses_nothing(tmp_path):
    config = _config(epochs=3)
    reference = tmp_path / "reference"
    train_run(config, reference, store=False, echo=_quiet)
    out, db = tmp_path / "run", tmp_path / "runs.db"

    def terminate_after_epoch_2(line: str = "", *args, **kwargs) -> None:
        if line.startswith("epoch   2/"):
            os.kill(os.getpid(), signal.SIGTERM)  # what kill, docker stop and schedulers send

    with pytest.raises(TrainingInterrupted, match="interrupted in epoch 3.*--resume") as error:
        train_run(config, out, echo=terminate_after_epoch_2)
    assert error.value.exit_code == 130
    assert _rows(db)[0]["status"] == "interrupted"

    def terminating_report(run_dir, data):
        os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(KeyboardInterrupt):
        train_run(config, out, resume=True, echo=_quiet, report=terminating_report)
    assert _rows(db)[0]["status"] == "interrupted" and not (out / "report.html").exists()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

    train_run(config, out, resume=True, echo=_quiet, report=_stub_report)
    (row,) = _rows(db)
    assert row["status"] == "finished" and (out / "report.html").is_file()
    _assert_same_weights(reference, out)


def test_a_store_locked_at_the_end_of_a_run_does_not_fail_it(tmp_path, capsys, monkeypatch):
    """Before: 'still locked after 60 s', exit 2 and the row left running."""
    monkeypatch.setattr(store_module, "LOCK_TIMEOUT", 0.3)
    out, db = tmp_path / "run", tmp_path / "runs.db"
    holder = {}

    def report_then_lock_the_store(run_dir, data):
        holder["lock"] = sqlite3.connect(db, isolation_level=None)
        holder["lock"].execute("BEGIN IMMEDIATE")  # another process writing, for too long
        return _stub_report(run_dir, data)

    metrics = train_run(_config(), out, echo=_quiet, report=report_then_lock_the_store)
    line = _one_line(capsys.readouterr().err)
    assert f"the run finished in {out}, but the run store did not record it" in line
    assert "still locked after 0.3 s" in line and f"runs list --db {db}" in line
    holder["lock"].execute("ROLLBACK")
    holder["lock"].close()
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT status FROM runs").fetchall() == [("running",)]
    assert main(["runs", "list", "--db", str(db)]) == 0
    out_text, err = capsys.readouterr()
    assert err == "updated 1 row of runs that ended unrecorded: 1 finished\n"
    (row,) = _rows(db)
    assert row["status"] == "finished"
    assert row["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    assert len(row["history"]) == 2 and "finished" in out_text


# ---------------------------------------------------------------------- files


def _no_constants(name):
    raise AssertionError(f"bare {name} in JSON")


def test_metrics_json_writes_null_for_nan(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": float("nan"), "b": [np.float32("inf"), 1.0], "c": np.float64(2)})
    parsed = json.loads(path.read_text(), parse_constant=_no_constants)
    assert parsed == {"a": None, "b": [None, 1.0], "c": 2.0}


def test_a_diverged_run_writes_valid_json_and_stops_with_one_line(tmp_path):
    out = tmp_path / "run"
    config = _config(optimizer="sgd", lr=1e6, dropout=0.0)
    with pytest.raises(RunDiverged, match="over 1000 times the first loss") as error:
        train_run(config, out, echo=_quiet, report=_stub_report)
    assert error.value.exit_code == 1 and "\n" not in str(error.value)
    metrics = json.loads((out / "metrics.json").read_text(), parse_constant=_no_constants)
    assert metrics["diverged"] is True and not (out / "report.html").exists()
    assert all(np.isfinite(a).all() and np.abs(a).max() < 1e10 for a in _weights(out).values())
    (row,) = _rows(tmp_path / "runs.db")
    assert row["status"] == "failed" and "RunDiverged" in row["error"]


BAD_JSON = [
    (b"\xff\xfe\x00garbage", "not a JSON file (byte 0xff at offset 0 is not UTF-8 text)"),
    (b"[1, 2]", "expected a JSON object {...}, got a JSON array"),
    (b'"text"', "expected a JSON object {...}, got a JSON string"),
    (b"null", "expected a JSON object {...}, got a JSON null"),
    (b'{"a": ', "not valid JSON"),
    (b"[" * 100_000, "not valid JSON (nested too deeply)"),
]


@pytest.mark.parametrize("content, message", BAD_JSON)
def test_a_json_file_of_another_shape_is_one_line_naming_it(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        read_json(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def finished_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    train_run(_config(epochs=1), out, store=False, echo=_quiet)
    return out


@pytest.mark.parametrize("name", ["config.json", "dataset.json", "metrics.json"])
@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"[1, 2]"])
def test_report_of_a_run_with_a_damaged_json_file(finished_folder, tmp_path, capsys, name, content):
    out = tmp_path / "run"
    out.mkdir()
    for path in finished_folder.iterdir():
        (out / path.name).write_bytes(path.read_bytes())
    (out / name).write_bytes(content)
    assert main(["report", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{out / name}: " in line and "Traceback" not in line


def test_a_trial_folder_with_a_damaged_config_stops_the_sweep_in_one_line(tmp_path, capsys):
    study = tmp_path / "study.toml"
    study.write_text(
        '[study]\nname = "s"\nmetric = "test_accuracy"\n[base]\ndataset = "digits"\nmodel = "knn"\n'
    )
    trial = tmp_path / "out" / "trials" / "base"
    trial.mkdir(parents=True)
    (trial / "config.json").write_bytes(b"[1, 2]")
    assert main(["sweep", str(study), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "got a JSON array" in _one_line(capsys.readouterr().err)


# ---------------------------------------------------------------------- the store


def test_the_store_names_a_full_disk_instead_of_cannot_rollback(tmp_path):
    db = tmp_path / "runs.db"
    with RunStore(db) as store:
        pages = store._connection.execute("PRAGMA page_count").fetchone()[0]
        store._connection.execute(f"PRAGMA max_page_count = {pages}")  # a full disk
        with pytest.raises(DataError) as error:
            store.start(tmp_path / "run", {"padding": "x" * 100_000})
    assert str(error.value) == f"{db}: database or disk is full"


def _running_row(db: Path, run_dir: Path, pid: int | None, host: str | None = None) -> int:
    with RunStore(db) as store:
        run_id = store.start(run_dir.resolve(), _config())
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE runs SET pid=?, host=COALESCE(?, host) WHERE id=?", (pid, host, run_id))
    return run_id


def test_runs_list_reconciles_rows_of_dead_runs_and_runs_rm_removes_rows(tmp_path, capsys):
    db = tmp_path / "runs.db"
    finished, stopped, alive = tmp_path / "finished", tmp_path / "stopped", tmp_path / "alive"
    for folder in (finished, stopped):
        train_run(_config(epochs=1), folder, store=False, echo=_quiet)
    (stopped / "metrics.json").unlink()  # killed before its metrics
    dead = _reaped()
    ids = {
        "finished": _running_row(db, finished, dead),
        "stopped": _running_row(db, stopped, dead),
        "alive": _running_row(db, alive, os.getpid()),
        "unknown": _running_row(db, tmp_path / "elsewhere", None, "another-host"),
    }
    with claim_run_folder(alive, new=True):
        assert main(["runs", "list", "--db", str(db)]) == 0
        out, err = capsys.readouterr()
        assert err == "updated 2 rows of runs that ended unrecorded: 1 finished, 1 interrupted\n"
        with RunStore(db) as store:
            status = {name: store.get(i)["status"] for name, i in ids.items()}
            assert "mnistlab train --resume" in store.get(ids["stopped"])["error"]
        assert status == {
            "finished": "finished",
            "stopped": "interrupted",
            "alive": "running",
            "unknown": "running",  # cannot be told from here: left alone
        }
        assert main(["runs", "rm", str(ids["alive"]), "--db", str(db)]) == 2
        assert "is still running" in _one_line(capsys.readouterr().err)
    # its claim released, the 'alive' run has ended too: interrupted, as the stopped one
    assert main(["runs", "list", "--db", str(db), "--status", "interrupted"]) == 0
    listing = capsys.readouterr().out
    assert str(stopped) in listing and str(alive) in listing
    assert main(["runs", "rm", "--status", "interrupted", "--db", str(db)]) == 0
    assert capsys.readouterr().out == f"removed 2 rows from {db}\n"
    assert stopped.is_dir()  # rows only, unless asked
    assert main(["runs", "rm", str(ids["finished"]), "--delete-folders", "--db", str(db)]) == 0
    assert capsys.readouterr().out == f"removed 1 row and 1 run folder from {db}\n"
    assert not finished.exists()
    assert main(["runs", "rm", "99", "--db", str(db)]) == 2
    assert "no run with id 99" in _one_line(capsys.readouterr().err)
    assert main(["runs", "rm", "--db", str(db)]) == 2
    assert "give the ids" in _one_line(capsys.readouterr().err)
    assert main(["runs", "rm", str(ids["unknown"]), "--db", str(db)]) == 0  # an old stuck row
    capsys.readouterr()
    assert _rows(db) == []
