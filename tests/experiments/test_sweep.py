"""Study files, `mnistlab sweep` on local workers and on a Dask cluster, resume, failures."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.errors import DataError, UsageError
from mnistlab.experiments.run_folder import run_folder_in_use
from mnistlab.experiments.runs import train_run
from mnistlab.experiments.store import RunStore
from mnistlab.experiments.study import load_study, parse_study
from mnistlab.experiments.sweep import run_sweep
from mnistlab.reports.sweep_report import rerun_command

DIGITS_STUDY = """
[study]
name = "digits-grid"
description = "a small grid on digits"
metric = "val_accuracy"

[base]
dataset = "digits"
preset = "seed000"
hidden = [32]
epochs = 4
validation = 300

[grid]
lr = [0.1, 0.02]
batch_size = [32, 64]

[repeat]
seeds = [0, 1]
"""


def write_study(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def weights_of(run_dir) -> dict:
    with np.load(Path(run_dir) / "weights.npz") as archive:
        return {k: archive[k].copy() for k in archive.files}


# ---------------------------------------------------------------------------- study files


def test_grid_random_and_repeats_expand(tmp_path):
    study = parse_study(
        """
        [study]
        metric = "test_accuracy"
        [base]
        dataset = "digits"
        model = "mlp"
        [grid]
        hidden = [[16], [16, 8]]
        [random]
        trials = 3
        seed = 7
        lr = { log_uniform = [1e-4, 1e-1] }
        dropout = { uniform = [0.0, 0.5] }
        epochs = { int_uniform = [2, 4] }
        optimizer = ["sgd", "adam"]
        [repeat]
        count = 2
        """,
        name="mixed",
    )
    assert study.name == "mixed" and study.goal == "max"
    assert len(study.trials) == 2 * 3 * 2
    assert study.varied == ["hidden", "lr", "dropout", "epochs", "optimizer", "seed"]
    labels = [t.label for t in study.trials]
    assert len(set(labels)) == len(labels)
    for trial in study.trials:
        assert 1e-4 <= trial.config["lr"] <= 1e-1
        assert 0 <= trial.config["dropout"] <= 0.5
        assert trial.config["epochs"] in (2, 3, 4)
        assert trial.config["seed"] in (0, 1)
        assert trial.config["dataset"] == "digits"
    again = parse_study(study.text, name="mixed")
    assert [t.config for t in again.trials] == [t.config for t in study.trials]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[bse]\nlr = 1", "unknown section [bse] (did you mean 'base'?)"),
        ('name = "x"\n[grid]\nlr = [1]', "name = 'x' lies outside any table; put it under [study]"),
        ("epochs = 3\n[grid]\nlr = [1]", "epochs = 3 lies outside any table; put it under [base]"),
        ("foo = 3\n[grid]\nlr = [1]", "foo = 3 lies outside any table; a study file has the"),
        ("[base]\nlearning_rat = 0.1", "[base] unknown key 'learning_rat'"),
        ("[base]\nlr = -0.1", "[base] lr must be a positive number, got -0.1"),
        ("[base]\nbatch_size = 'big'", "[base] batch_size must be a positive integer, got 'big'"),
        ("[grid]\nlr = 0.1", "[grid] lr must be a non-empty list of values, got 0.1"),
        ("[grid]\nlr = []", "[grid] lr must be a non-empty list of values, got []"),
        ("[grid]\nlr = [0.1, -1.0]", "trial lr=-1: lr must be a positive number, got -1.0"),
        ("[grid]\nactivation = ['relu', 'swish']", "trial activation=swish"),
        ("[grid]\nlr = [0.1, 0.1]", "[grid] lr lists a value twice"),
        ("[random]\ntrials = 2\nlr = { normal = [0, 1] }", "unknown distribution 'normal'"),
        ("[random]\ntrials = 2\nlr = { log_uniform = [0, 1] }", "log_uniform needs low > 0"),
        ("[random]\ntrials = 2\nlr = { uniform = [1, 0] }", "needs [low, high] with low <= high"),
        ("[random]\ntrials = 0\nlr = [0.1]", "[random] trials must be a positive number"),
        ("[random]\ntrials = 3", "[random] trials is set but no parameter"),
        ("[repeat]\nseeds = [1, 1]", "[repeat] seeds must be distinct non-negative integers"),
        ("[repeat]\ncount = 2\nseeds = [0]", "[repeat] give seeds or count, not both"),
        ("[study]\nmetric = 'f1'", "[study] metric must be one of"),
        ("[study]\ngoal = 'up'", "[study] goal must be 'max' or 'min', got 'up'"),
        ("[study]\nname = 'a/b'", "[study] name must be letters"),
        ("[base]\nvalidation = 0\n[study]\nmetric = 'val_accuracy'", "needs a validation split"),
        ("[base]\nmodel = 'knn'\n[study]\nmetric = 'val_accuracy'", "needs a validation split"),
        ("[study]\nmetrc = 'x'", "[study] unknown key 'metrc' (did you mean 'metric'?)"),
        (
            "[base]\nmodel = 'knn'\n[grid]\nlr = [0.1, 0.2]",
            "[grid] lr does not apply to the knn model its trials train; varying it would only",
        ),
        (
            "[grid]\nmodel = ['gaussian', 'knn']\nepochs = [1, 2]",
            "[grid] epochs does not apply to the gaussian or knn model its trials train",
        ),
        ("[random]\ntrials = 2\nk = { choice = [1, 3] }", "[random] k does not apply to the mlp"),
    ],
)
def test_study_errors_name_the_key_and_the_value(tmp_path, text, message):
    path = write_study(tmp_path, text)
    with pytest.raises(UsageError) as info:
        load_study(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="not valid TOML"):
        load_study(write_study(tmp_path, "[base\nlr = 1"))
    with pytest.raises(UsageError, match="no such study file"):
        load_study(tmp_path / "missing.toml")


def test_shipped_studies_are_valid():
    folder = Path(__file__).resolve().parents[2] / "studies"
    studies = sorted(folder.glob("*.toml"))
    names = {p.stem for p in studies}
    for wanted in (
        "depth",
        "learning-rate",
        "batch-size",
        "activation",
        "initializer",
        "optimizer",
        "regularization",
        "classical",
        "cnn",
    ):
        assert wanted in names
    for path in studies:
        study = load_study(path)
        assert study.trials and study.description
        assert path.read_text(encoding="utf-8").lstrip().startswith("#")  # says what it asks


# ---------------------------------------------------------------------------- sweeps


def test_sweep_cli_writes_store_report_and_skips_finished(tmp_path, capsys):
    study = write_study(tmp_path, DIGITS_STUDY)
    out = tmp_path / "out"
    assert main(["sweep", str(study), "--workers", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "8 trials (0 failed)" in printed and "best lr=0.1" in printed
    summary = json.loads((out / "sweep.json").read_text())
    assert [t["status"] for t in summary["trials"]] == ["finished"] * 8
    with RunStore(out / "runs.db") as store:
        rows = store.list(study="digits-grid")
    assert len(rows) == 8 and {r["status"] for r in rows} == {"finished"}
    assert all(len(r["history"]) == 4 for r in rows)
    page = (out / "report.html").read_text()
    for section in ("ranking", "trials", "parameters", "pairs", "curves", "best", "timing"):
        assert f'id="{section}"' in page
    assert 'id="draws"' not in page  # a grid draws nothing at random
    # two parameter charts, the heatmap of their pair, the curves, the timing
    assert page.count("<img") == 5 and 'alt="val_accuracy by lr and batch_size"' in page
    assert "val_accuracy (mean ± std over seeds)" in page and "2 seeds" in page
    assert "mnistlab train --config" in page and "http" not in page.replace("http-equiv", "")
    # every trial folder is a full run folder
    for trial in summary["trials"]:
        run_dir = Path(trial["run_dir"])
        for name in ("config.json", "weights.npz", "history.csv", "metrics.json"):
            assert (run_dir / name).is_file()
    # the rerun command in the report reproduces the best trial
    # a second run skips all of them
    assert main(["sweep", str(study), "--workers", "2", "--out", str(out)]) == 0
    assert "8 already finished" in capsys.readouterr().out
    with RunStore(out / "runs.db") as store:
        assert len(store.list()) == 8
    assert len(json.loads((out / "sweep.json").read_text())["sessions"]) == 2


def test_rerun_command_of_the_best_trial_reproduces_it(tmp_path, capsys):
    study = write_study(tmp_path, DIGITS_STUDY.replace("[0.1, 0.02]", "[0.1]"))
    out = tmp_path / "out"
    assert main(["sweep", str(study), "--workers", "1", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    best = sorted(
        json.loads((out / "sweep.json").read_text())["trials"],
        key=lambda t: -t["metrics"]["val_accuracy"],
    )[0]
    again = tmp_path / "again"
    config = Path(best["run_dir"]) / "config.json"
    assert main(["train", "--config", str(config), "--out", str(again), "--quiet"]) == 0
    for key, value in weights_of(best["run_dir"]).items():
        np.testing.assert_array_equal(weights_of(again)[key], value)


def test_rerun_flags_leave_out_base_keys_the_trials_model_does_not_use(tmp_path, capsys):
    base = {"dataset": "digits", "epochs": 2, "hidden": [16]}
    _, flags = rerun_command(tmp_path / "config.json", {"model": "knn", "k": 3}, base)
    assert flags == "mnistlab train --dataset digits --model knn --k 3"
    out = tmp_path / "again"
    assert main([*shlex.split(flags)[1:], "--quiet", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["k"] == 3
    _, flags = rerun_command(tmp_path / "config.json", {"model": "mlp"}, base)
    assert flags == "mnistlab train --dataset digits --epochs 2 --hidden 16 --model mlp"


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    text = DIGITS_STUDY.replace("[repeat]\nseeds = [0, 1]\n", "").replace(
        "batch_size = [32, 64]", f'dataset = ["digits", "{tmp_path / "nothing-here"}"]'
    )
    out = tmp_path / "out"
    code = main(["sweep", str(write_study(tmp_path, text)), "--workers", "2", "--out", str(out)])
    summary = json.loads((out / "sweep.json").read_text())
    failed = [t for t in summary["trials"] if t["status"] == "failed"]
    assert len(failed) == 2 and all("nothing-here" in t["label"] for t in failed)
    assert all("nothing-here" in t["error"] for t in failed)
    assert summary["failed"] == 2
    with RunStore(out / "runs.db") as store:
        assert sorted(r["status"] for r in store.list()) == [
            "failed",
            "failed",
            "finished",
            "finished",
        ]
    assert "failed" in (out / "report.html").read_text()
    assert code == 1  # the exit code says that trials failed (not only when all of them did)


def test_a_changed_study_does_not_overwrite_other_trials(tmp_path, capsys):
    out = tmp_path / "out"
    study = write_study(tmp_path, DIGITS_STUDY.replace("[0, 1]", "[0]"))
    assert main(["sweep", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    changed = write_study(
        tmp_path,
        DIGITS_STUDY.replace("[0, 1]", "[0]").replace("epochs = 4", "epochs = 5"),
        "changed.toml",
    )
    assert main(["sweep", str(changed), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds a run with another configuration" in err and err.count("\n") == 1


def test_sweep_usage_errors(tmp_path, capsys):
    study = write_study(tmp_path, DIGITS_STUDY)
    assert main(["sweep", str(study), "--executor", "dask"]) == 2
    assert "--executor dask needs --scheduler" in capsys.readouterr().err
    assert main(["sweep", str(study), "--workers", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--workers must be at least 1, got 0" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "none.toml")]) == 2
    assert main(["sweep", str(study), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("lr=") == 8
    # a dry run checks the options that the real run would refuse
    assert main(["sweep", str(study), "--dry-run", "--workers", "0"]) == 2
    assert "--workers must be at least 1, got 0" in capsys.readouterr().err
    assert main(["sweep", str(study), "--dry-run", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "--scheduler is for --executor dask" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_experiments_import_nothing_from_reports_or_the_cli():
    # a report is built by whoever asks for one, through the hooks train_run and run_sweep take
    code = (
        "import sys, mnistlab.experiments.runs, mnistlab.experiments.sweep; "
        "print([m for m in sys.modules if m.startswith(('mnistlab.reports', 'mnistlab.cli'))])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_run_sweep_calls_its_report_hook_once_the_trials_are_done(tmp_path):
    study = load_study(write_study(tmp_path, DIGITS_STUDY.replace("[0, 1]", "[0]")))
    calls = []

    def report(out, given):
        calls.append((out, given, json.loads((out / "sweep.json").read_text())["status"]))
        return out / "page.html"

    summary = run_sweep(
        study, tmp_path / "out", workers=2, echo=lambda *a: None, report=report, progress=False
    )
    assert calls == [(tmp_path / "out", study, "finished")]
    assert summary["report"] == str(tmp_path / "out" / "page.html")
    assert not (tmp_path / "out" / "report.html").exists()


def _dask_cli() -> str | None:
    local = Path(sys.executable).parent / "dask"
    return str(local) if local.exists() else shutil.which("dask")


@pytest.mark.slow
@pytest.mark.skipif(_dask_cli() is None, reason="dask.distributed is not installed")
def test_local_workers_and_a_dask_cluster_give_identical_results(tmp_path):
    """`dask scheduler` and `dask worker` on 127.0.0.1, as the README shows them."""
    from distributed import Client

    study = load_study(write_study(tmp_path, DIGITS_STUDY))
    local = run_sweep(study, tmp_path / "local", workers=2, echo=lambda *a: None)

    scheduler_file = tmp_path / "scheduler.json"
    # scratch space of the scheduler and workers inside tmp_path, not /tmp/dask-scratch-space
    env = {**os.environ, "DASK_TEMPORARY_DIRECTORY": str(tmp_path / "dask-tmp")}
    common = {
        "cwd": tmp_path,
        "env": env,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
    }
    dask = _dask_cli()
    scheduler = subprocess.Popen(
        [
            dask,
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        ],
        **common,
    )
    workers = None
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = subprocess.Popen(
            [
                dask,
                "worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nworkers",
                "2",
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                "--local-directory",
                str(tmp_path / "dask-workers"),
            ],
            **common,
        )
        with Client(scheduler_file=str(scheduler_file), timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        remote = run_sweep(
            study,
            tmp_path / "dask",
            executor="dask",
            scheduler=str(scheduler_file),
            echo=lambda *a: None,
        )
    finally:
        for process in (workers, scheduler):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
    assert remote["executor"] == "dask"
    for a, b in zip(local["trials"], remote["trials"], strict=True):
        assert a["label"] == b["label"] and a["status"] == b["status"] == "finished"
        assert a["metrics"]["val_accuracy"] == b["metrics"]["val_accuracy"]
        assert a["metrics"]["test_accuracy"] == b["metrics"]["test_accuracy"]
        wa, wb = weights_of(a["run_dir"]), weights_of(b["run_dir"])
        for key in wa:
            np.testing.assert_array_equal(wa[key], wb[key])
    workers_used = {t["worker"] for t in remote["trials"]}
    assert len(workers_used) == 2  # both Dask workers ran trials


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_a_rerun_resumes_to_the_same_results(tmp_path):
    text = (
        DIGITS_STUDY.replace("epochs = 4", "epochs = 400")
        .replace("[repeat]\nseeds = [0, 1]\n", "")
        .replace("batch_size = [32, 64]", "batch_size = [32]")
    )
    study_path = write_study(tmp_path, text)
    reference = run_sweep(
        load_study(study_path),
        tmp_path / "reference",
        workers=2,
        echo=lambda *a: None,
    )
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "mnistlab",
        "sweep",
        str(study_path),
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    trials = out / "trials"
    while time.monotonic() < deadline:  # both trials have saved an epoch's checkpoint
        if trials.exists() and len(list(trials.glob("*/checkpoint.npz"))) == 2:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    summary = json.loads((out / "sweep.json").read_text())
    assert {t["status"] for t in summary["trials"]} <= {"interrupted", "finished"}
    assert "interrupted" in {t["status"] for t in summary["trials"]}

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "to resume" in rerun.stdout
    resumed = json.loads((out / "sweep.json").read_text())
    for a, b in zip(reference["trials"], resumed["trials"], strict=True):
        assert b["status"] == "finished"
        assert a["metrics"]["val_accuracy"] == b["metrics"]["val_accuracy"]
        wa, wb = weights_of(a["run_dir"]), weights_of(b["run_dir"])
        for key in wa:
            np.testing.assert_array_equal(wa[key], wb[key])


# ---------------------------------------------------------------------------- lost workers

LONG_TRIALS = """
[study]
name = "lost"
metric = "test_accuracy"

[base]
dataset = "digits"
hidden = [64]
batch_size = 8
dropout = 0.0
epochs = 40

[grid]
lr = [0.001, 0.002]
"""


def _claimed_by(run_dir: Path) -> int | None:
    try:
        return int((run_dir / ".run.lock").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_lost_worker_is_retried_once_and_its_pool_neighbour_requeued(tmp_path):
    """Before: both trials 'failed (worker lost)', both rows left running, exit 0."""
    study = load_study(write_study(tmp_path, LONG_TRIALS))
    out = tmp_path / "out"
    victim, neighbour = (out / "trials" / t.folder_name for t in study.trials)
    killed = {}

    def kill_one_worker():
        _wait_until(
            lambda: all((t / "checkpoint.npz").exists() for t in (victim, neighbour)),
            120,
            "both trials to run",
        )
        killed["pid"] = _claimed_by(victim)
        os.kill(killed["pid"], signal.SIGKILL)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    lines = []
    summary = run_sweep(study, out, workers=2, echo=lines.append, progress=False)
    killer.join()
    assert killed["pid"] is not None
    assert [t["status"] for t in summary["trials"]] == ["finished", "finished"]
    assert summary["failed"] == 0
    lost = f"{study.trials[0].label}: its worker was lost; retrying it"
    assert lost in lines
    # the neighbour is requeued unless it finished before the pool broke (a loaded machine can
    # let its short trial end between the kill and the pool noticing it)
    neighbour = study.trials[1].label
    finished_first = any(f"] {neighbour}: finished" in line for line in lines[: lines.index(lost)])
    assert finished_first or f"{neighbour}: its pool broke; running it again" in lines
    with RunStore(out / "runs.db") as store:
        rows = store.list()
    assert len(rows) == 2 and {r["status"] for r in rows} == {"finished"}
    reference = tmp_path / "reference"
    train_run(study.trials[0].config, reference, store=False, echo=lambda *a, **k: None)
    wa, wb = weights_of(reference), weights_of(victim)
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key])


def _workers_of(pid: int) -> list[int]:
    """The pool workers (multiprocessing's spawned children) of process `pid`."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    workers = []
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            workers.append(int(child))
    return workers


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # ended (a zombie nobody reaps in a container counts)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_workers_die_with_a_killed_sweep(tmp_path):
    """Before: a kill -9 of the sweep left its workers alive and idle."""
    study = write_study(tmp_path, LONG_TRIALS)
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "mnistlab", "sweep", str(study), "--workers", "2",
         "--out", str(out), "--quiet", "--no-report"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_until(
            lambda: len(list(out.glob("trials/*/.run.lock"))) == 2, 120, "both trials to start"
        )
        workers = _workers_of(sweep.pid)
        assert len(workers) == 2
    finally:
        sweep.kill()
        sweep.wait(timeout=30)
    _wait_until(lambda: all(_gone(pid) for pid in workers), 10, "the workers to end")
    trials = list(out.glob("trials/*"))
    _wait_until(
        lambda: not any(run_folder_in_use(t) for t in trials), 10, "their claims to be released"
    )
    # `runs list` (and a rerun) finds their rows 'running' with no one at work
    assert main(["runs", "list", "--db", str(out / "runs.db")]) == 0
    with RunStore(out / "runs.db") as store:
        assert {r["status"] for r in store.list()} == {"interrupted"}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_sigterm_stops_a_sweep_as_ctrl_c_does(tmp_path):
    """Before: SIGTERM (docker stop, a cluster scheduler) killed the sweep at once, rows
    'running'."""
    study = write_study(tmp_path, LONG_TRIALS)
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "mnistlab", "sweep", str(study), "--workers", "2",
         "--out", str(out), "--quiet", "--no-report"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_until(lambda: len(list(out.glob("trials/*/checkpoint.npz"))) == 2, 120, "both trials")
        workers = _workers_of(sweep.pid)
        sweep.send_signal(signal.SIGTERM)
        _, stderr = sweep.communicate(timeout=120)
    finally:
        sweep.kill()
    assert sweep.returncode == 130, stderr
    assert "interrupted:" in stderr and "Traceback" not in stderr
    assert all(_gone(pid) for pid in workers)
    summary = json.loads((out / "sweep.json").read_text())
    statuses = {t["label"]: t["status"] for t in summary["trials"]}
    with RunStore(out / "runs.db") as store:
        rows = {r["trial"]: r["status"] for r in store.list()}
    assert rows == statuses and "interrupted" in statuses.values()
    assert set(statuses.values()) <= {"interrupted", "finished"}
