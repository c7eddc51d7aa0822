"""Running a study: every trial a training run, in parallel worker processes or on a Dask cluster.

Both executors are `concurrent.futures.Executor`s (a process pool here, `distributed`'s
`Client.get_executor()` there), so one loop submits trials, collects results and records them.
Layout of the output folder::

    OUT/study.toml          the study as run
    OUT/runs.db             the run store: one row per trial (and per resumed attempt)
    OUT/trials/<label>/     each trial's run folder (config.json, weights.npz, history.csv, ...)
    OUT/sweep.json          every trial's status and metrics, rewritten as trials finish
    OUT/report.html         the sweep report, written by the `report` hook run_sweep is given

A trial that raises is recorded as failed with its error and the sweep goes on. Ctrl-C stops the
running trials at their next step (each saves a checkpoint) and submits no more; running the same
study again skips finished trials and resumes interrupted ones.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from mnistlab._io import write_text_atomic
from mnistlab.errors import MnistlabError, SweepInterrupted, TrainingInterrupted, UsageError
from mnistlab.experiments.runs import train_run
from mnistlab.experiments.store import RunStore
from mnistlab.experiments.study import Study
from mnistlab.train.interrupts import InterruptFlag

EXECUTORS = ("local", "dask")
#: the metrics a trial's result carries back (the full set is in its metrics.json)
RESULT_METRICS = (
    "test_accuracy",
    "test_loss",
    "test_errors",
    "val_accuracy",
    "val_loss",
    "train_accuracy",
    "train_loss",
    "train_seconds",
    "epochs_run",
    "stop_reason",
)
# one trial at a time per process: BLAS thread limits are per process, not per thread
_TRIAL_LOCK = threading.Lock()
#: Writes the sweep's report from its output folder and its study; returns the report's path.
SweepReport = Callable[[Path, Study], Path]


def run_trial(task: dict) -> dict:
    """Train one trial (in a worker process or a Dask worker); never raises for a failed run."""
    started = time.perf_counter()
    result = {"label": task["label"], "run_dir": task["run_dir"], "worker": _worker_name()}
    with _TRIAL_LOCK, threadpool_limits(limits=task.get("blas_threads", 1)):
        try:
            metrics = train_run(
                task["config"],
                Path(task["run_dir"]),
                resume=task["resume"],
                offline=task.get("offline"),
                progress=False,
                echo=lambda *args, **kwargs: None,
                store=task["store"],
                study=task["study"],
                trial=task["label"],
            )
        except TrainingInterrupted:
            result.update(status="interrupted", error="interrupted; rerun the study to resume")
        except MnistlabError as exc:
            result.update(status="failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a failed trial must not end the sweep
            result.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        else:
            result.update(
                status="finished",
                run_id=metrics.get("run_id"),
                metrics={k: metrics.get(k) for k in RESULT_METRICS if metrics.get(k) is not None},
            )
    result["seconds"] = time.perf_counter() - started
    return result


def _worker_name() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"


def _init_local_worker() -> None:
    """Pool worker start-up: its own process group, so a terminal's Ctrl-C reaches only the
    parent, which forwards exactly one SIGINT to each worker (a second one would abort a trial
    before its checkpoint); SIGINT ignored outside a trial's training loop. (BLAS threads are
    limited per trial, in run_trial, which serves the Dask workers as well.)"""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def plan_trials(study: Study, out: Path) -> list[dict]:
    """Each trial's task, with its state: finished (skipped), resume, or new."""
    tasks = []
    store_path = out / "runs.db"
    with RunStore(store_path) as store:
        for trial in study.trials:
            run_dir = (out / "trials" / trial.folder_name).resolve()
            saved = run_dir / "config.json"
            state = "new"
            if saved.exists():
                try:
                    previous = json.loads(saved.read_text(encoding="utf-8"))
                except json.JSONDecodeError:
                    previous = None
                if previous != json.loads(json.dumps(trial.config)):
                    raise UsageError(
                        f"{run_dir}: holds a run with another configuration than trial "
                        f"{trial.label} of this study; use another --out or remove that folder"
                    )
                row = store.latest(run_dir)
                if row is not None and row["status"] == "finished":
                    state = "finished"
                elif (run_dir / "checkpoint.npz").exists() and trial.config["model"] == "mlp":
                    state = "resume"
            tasks.append(
                {
                    "label": trial.label,
                    "params": trial.params,
                    "config": trial.config,
                    "run_dir": str(run_dir),
                    "store": str(store_path.resolve()),
                    "study": study.name,
                    "state": state,
                    "resume": state == "resume",
                    "blas_threads": 1,
                }
            )
    return tasks


def _finished_result(task: dict, store_path: Path) -> dict:
    with RunStore(store_path) as store:
        row = store.latest(Path(task["run_dir"]))
    metrics = row["metrics"] or {}
    return {
        "label": task["label"],
        "run_dir": task["run_dir"],
        "status": "finished",
        "skipped": True,
        "run_id": row["id"],
        "seconds": row["seconds"],
        "worker": None,
        "metrics": {k: metrics[k] for k in RESULT_METRICS if metrics.get(k) is not None},
    }


class _Local:
    """A process pool that can forward one Ctrl-C to its workers and be replaced if it breaks."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.executor = self._new()

    def _new(self):
        return cf.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=self.context, initializer=_init_local_worker
        )

    @property
    def slots(self) -> int:
        return self.workers

    def renew(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._new()

    def interrupt(self) -> None:
        for process in list(getattr(self.executor, "_processes", {}).values()):
            try:
                os.kill(process.pid, signal.SIGINT)
            except (ProcessLookupError, AttributeError):
                pass

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


class _Dask:
    def __init__(self, scheduler: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise UsageError(
                "--executor dask needs dask.distributed: pip install 'distributed'"
            ) from None
        kwargs = {"scheduler_file": scheduler} if Path(scheduler).is_file() else {}
        try:
            self.client = Client(
                None if kwargs else scheduler, timeout=15, set_as_default=False, **kwargs
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(
                f"--scheduler {scheduler}: no Dask scheduler answered ({exc})"
            ) from None
        self.executor = self.client.get_executor(pure=False)

    @property
    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def renew(self) -> None:  # a lost Dask worker is the scheduler's business
        pass

    def interrupt(self) -> None:
        pass  # running tasks finish on the cluster; nothing new is submitted

    def close(self) -> None:
        self.executor.shutdown(wait=False)
        self.client.close()


def check_options(workers: int | None, executor: str, scheduler: str | None) -> None:
    """UsageError for a combination of sweep options that cannot run (also before --dry-run)."""
    if executor not in EXECUTORS:
        raise UsageError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if executor == "dask" and not scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS (or a scheduler file)")
    if executor == "local" and scheduler:
        raise UsageError("--scheduler is for --executor dask")
    if workers is not None and (workers < 1 or executor == "dask"):
        raise UsageError(
            f"--workers must be at least 1, got {workers}"
            if workers < 1
            else "--workers is for the local executor; a Dask cluster has its own workers"
        )


def run_sweep(
    study: Study,
    out: str | os.PathLike,
    *,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    offline: bool | None = None,
    progress: bool | None = None,
    echo=print,
    report: SweepReport | None = None,
) -> dict:
    """Run every trial of `study` not yet finished in `out`; return the sweep summary.

    With `report`, also write the sweep's report: report(out, study) once the trials are done
    (interrupted or not); its path is the summary's "report".
    """
    check_options(workers, executor, scheduler)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "study.toml", study.text)
    tasks, results, todo = _plan(study, out, offline)
    if workers is None:
        workers = max(1, min(os.cpu_count() or 1, len(todo)))
    summary = _new_summary(study, executor, workers, scheduler)
    echo(
        f"study {study.name}: {len(tasks)} trials, {len(results)} already finished, "
        f"{sum(t['resume'] for t in todo)} to resume; ranking by {study.metric} ({study.goal})"
    )
    sessions = _previous_sessions(out)
    started = time.perf_counter()
    status = "finished"
    if todo:
        pool = _open_pool(executor, workers, scheduler, echo)
        try:
            loop = _TrialLoop(pool, tasks, todo, results, summary, out, progress, echo, started)
            status = loop.run()
        finally:
            pool.close()
    summary["trials"] = _ordered(tasks, results)
    summary["status"] = status
    _add_session(summary, sessions, time.perf_counter() - started, len(todo), status)
    _write_summary(out, summary)
    if report is not None:
        summary["report"] = str(report(out, study))
    if status == "interrupted":
        done = sum(r["status"] == "finished" for r in results.values())
        raise SweepInterrupted(
            f"interrupted: {done} of {len(tasks)} trials finished; run the same command again "
            f"to go on (finished trials are skipped, interrupted ones resume)"
        )
    return summary


def _plan(study: Study, out: Path, offline: bool | None) -> tuple[list, dict, list]:
    """Every trial's task; the results of those already finished; the tasks still to run."""
    tasks = plan_trials(study, out)
    for task in tasks:
        task["offline"] = offline
    store_path = out / "runs.db"
    results = {
        t["label"]: _finished_result(t, store_path) for t in tasks if t["state"] == "finished"
    }
    return tasks, results, [t for t in tasks if t["state"] != "finished"]


def _open_pool(executor: str, workers: int, scheduler: str | None, echo):
    if executor == "local":
        return _Local(workers)
    pool = _Dask(scheduler)
    echo(f"dask: {len(pool.client.nthreads())} workers, {pool.slots} threads at {scheduler}")
    return pool


def _new_summary(study: Study, executor: str, workers: int, scheduler: str | None) -> dict:
    """sweep.json as this session starts: the study, the executor, no trial yet."""
    return {
        "study": study.name,
        "description": study.description,
        "metric": study.metric,
        "goal": study.goal,
        "varied": study.varied,
        "executor": executor,
        "workers": workers if executor == "local" else None,
        "scheduler": scheduler,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "trials": [],
    }


def _add_session(
    summary: dict, sessions: list[dict], wall_seconds: float, trials_run: int, status: str
) -> None:
    """This session after the earlier ones; the wall time of them all."""
    summary["sessions"] = sessions + [
        {
            "started": summary["started"],
            "wall_seconds": wall_seconds,
            "trials_run": trials_run,
            "executor": summary["executor"],
            "workers": summary["workers"],
            "status": status,
        }
    ]
    summary["wall_seconds"] = sum(s["wall_seconds"] for s in summary["sessions"])


def _previous_sessions(out: Path) -> list[dict]:
    """The earlier runs of this study into `out` (a resumed sweep adds to them)."""
    try:
        previous = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    sessions = previous.get("sessions")
    return sessions if isinstance(sessions, list) else []


def _ordered(tasks, results) -> list[dict]:
    rows = []
    for task in tasks:
        result = results.get(task["label"]) or {"status": "not run", "metrics": {}}
        rows.append(
            {
                "label": task["label"],
                "params": task["params"],
                "run_dir": task["run_dir"],
                **{k: v for k, v in result.items() if k not in ("label", "run_dir")},
            }
        )
    return rows


def _write_summary(out: Path, summary: dict) -> None:
    write_text_atomic(out / "sweep.json", json.dumps(summary, indent=2, default=str) + "\n")


class _TrialLoop:
    """Submits trials while the executor has free slots and records each result as it arrives
    (sweep.json rewritten every time). On Ctrl-C it cancels the trials not yet started, asks
    the running ones to stop at their next step, and submits no more."""

    def __init__(self, pool, tasks, todo, results, summary, out, progress, echo, started) -> None:
        self.pool = pool
        self.tasks, self.results, self.summary, self.out = tasks, results, summary, out
        self.echo, self.started = echo, started
        self.queue = list(todo)
        self.running: dict[cf.Future, dict] = {}
        self.interrupted = False
        self.bar = tqdm(
            total=len(tasks),
            initial=len(tasks) - len(todo),
            unit="trial",
            disable=(not sys.stderr.isatty()) if progress is None else not progress,
            file=sys.stderr,
        )

    def run(self) -> str:
        """Until every trial has a result (or Ctrl-C): "finished" or "interrupted"."""
        try:
            with InterruptFlag() as stop:
                self._submit()
                while self.running:
                    finished, _ = cf.wait(
                        list(self.running), timeout=0.3, return_when=cf.FIRST_COMPLETED
                    )
                    if stop.is_set() and not self.interrupted:
                        self._interrupt()
                    self._collect(finished)
                    self._submit()
        finally:
            self.bar.close()
        return "interrupted" if self.interrupted else "finished"

    def _submit(self) -> None:
        while self.queue and len(self.running) < self.pool.slots and not self.interrupted:
            task = self.queue.pop(0)
            self.running[self.pool.executor.submit(run_trial, task)] = task

    def _interrupt(self) -> None:
        self.interrupted = True
        self.echo("interrupt: stopping the running trials at their next step ...")
        for future in list(self.running):
            if future.cancel():
                self.running.pop(future)
        self.pool.interrupt()
        self.queue.clear()

    def _collect(self, finished) -> None:
        broken = False
        for future in finished:
            task = self.running.pop(future)
            try:
                result = future.result()
            except cf.CancelledError:
                continue
            except Exception as exc:  # the worker died (killed, out of memory) or broke
                broken = isinstance(exc, cf.process.BrokenProcessPool)
                result = {
                    "label": task["label"],
                    "run_dir": task["run_dir"],
                    "status": "failed",
                    "error": f"worker lost: {type(exc).__name__}: {exc}",
                    "seconds": 0.0,
                    "metrics": {},
                }
            self._record(task, result)
        if broken:
            for future, task in list(self.running.items()):  # collateral of the same pool
                self.running.pop(future)
                self.queue.insert(0, task)
            self.pool.renew()

    def _record(self, task: dict, result: dict) -> None:
        self.results[task["label"]] = result
        self.bar.update(1)
        metric = self.summary["metric"]
        line = f"[{len(self.results)}/{len(self.tasks)}] {task['label']}: {result['status']}"
        if result["status"] == "finished":
            value = result["metrics"].get(metric)
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            line += f", {metric} {shown}"
        elif result.get("error"):
            line += f" ({result['error']})"
        (self.echo if self.bar.disable else self.bar.write)(f"{line} ({result['seconds']:.1f} s)")
        self.summary["trials"] = _ordered(self.tasks, self.results)
        self.summary["wall_seconds"] = time.perf_counter() - self.started
        _write_summary(self.out, self.summary)
