"""Running a study: every trial a training run, in parallel worker processes or on a Dask cluster.

Both executors are `concurrent.futures.Executor`s (a process pool here, `distributed`'s
`Client.get_executor()` there), so one loop submits trials, collects results and records them.
Layout of the output folder::

    OUT/study.toml          the study as run
    OUT/runs.db             the run store: one row per trial (and per resumed attempt)
    OUT/trials/<label>/     each trial's run folder (config.json, weights.npz, history.csv, ...)
    OUT/sweep.json          every trial's status and metrics, rewritten as trials finish
    OUT/report.html         the sweep report, written by the `report` hook run_sweep is given

A trial that raises is recorded as failed with its error and the sweep goes on. A trial whose
worker process dies (killed, out of memory) is retried once; the other trials that were running
in the same pool, which a dead worker breaks, are run again without counting against them.
Ctrl-C or SIGTERM stops the running trials at their next step (each saves a checkpoint) and
submits no more; running the same study again skips finished trials and resumes the others. When
the trials are done, the store's rows are made to say what sweep.json says (no row is left
'running').
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from mnistlab._io import write_text_atomic
from mnistlab.errors import (
    DataError,
    MnistlabError,
    SweepInterrupted,
    TrainingInterrupted,
    UsageError,
)
from mnistlab.experiments.executors import DaskPool, LocalPool
from mnistlab.experiments.run_folder import (
    claim_owner,
    finished_metrics,
    read_history,
    read_json,
    run_folder_in_use,
)
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
#: how many times a trial whose worker died is run again
LOST_WORKER_RETRIES = 1
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
        except (TrainingInterrupted, KeyboardInterrupt):
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
                if read_json(saved) != json.loads(json.dumps(trial.config)):
                    raise UsageError(
                        f"{run_dir}: holds a run with another configuration than trial "
                        f"{trial.label} of this study; use another --out or remove that folder"
                    )
                row = store.latest(run_dir)
                # anything else it holds is continued: a checkpoint, or a run killed before
                # its first one, or after its metrics (a resume completes its store row)
                state = "finished" if row is not None and row["status"] == "finished" else "resume"
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
    _settle_rows(out / "runs.db", tasks, results)
    summary["trials"] = _ordered(tasks, results)
    summary["status"] = status
    summary["failed"] = sum(r["status"] == "failed" for r in results.values())
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
        return LocalPool(workers)
    pool = DaskPool(scheduler)
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
    if not (out / "sweep.json").exists():
        return []
    try:
        previous = read_json(out / "sweep.json")
    except DataError:
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
        self.pool.note_workers()

    def _interrupt(self) -> None:
        self.interrupted = True
        self.echo("interrupt: stopping the running trials at their next step ...")
        for future in list(self.running):
            if future.cancel():
                self.running.pop(future)
        self.pool.interrupt()
        self.queue.clear()

    def _collect(self, finished) -> None:
        lost = []
        for future in finished:
            task = self.running.pop(future)
            try:
                result = future.result()
            except cf.CancelledError:
                continue
            except cf.process.BrokenProcessPool:
                lost.append(task)
                continue
            except Exception as exc:  # a Dask worker lost, or a task that could not be sent
                result = _failed(task, f"worker lost: {type(exc).__name__}: {exc}")
            self._record(task, result)
        if lost:
            self._broken_pool(lost)

    def _broken_pool(self, lost: list[dict]) -> None:
        """A worker died and broke the pool: every trial still running in it ends too. The
        trial whose worker died (told by its run folder's claim) runs again, once; the others
        run again without that counting against them; then a fresh pool takes over."""
        remaining, _ = cf.wait(list(self.running), timeout=60)
        for future in remaining:
            task = self.running.pop(future)
            try:
                self._record(task, future.result())
            except Exception:  # noqa: BLE001 - broken with the pool
                lost.append(task)
        dead = self.pool.lost_workers()
        owners = {task["label"]: claim_owner(Path(task["run_dir"]))[0] for task in lost}
        blamed = {label for label, pid in owners.items() if pid in dead} or set(owners)
        for task in reversed(lost):
            task["resume"] = True  # whatever its folder holds, continue it
            if task["label"] not in blamed:
                self._say(f"{task['label']}: its pool broke; running it again")
                self.queue.insert(0, task)
                continue
            task["lost"] = task.get("lost", 0) + 1
            if task["lost"] > LOST_WORKER_RETRIES:
                error = f"worker lost {task['lost']} times (killed, or out of memory)"
                self._record(task, _failed(task, error))
            else:
                self._say(f"{task['label']}: its worker was lost; retrying it")
                self.queue.insert(0, task)
        self.pool.renew()

    def _say(self, line: str) -> None:
        (self.echo if self.bar.disable else self.bar.write)(line)

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
        self._say(f"{line} ({result['seconds']:.1f} s)")
        self.summary["trials"] = _ordered(self.tasks, self.results)
        self.summary["wall_seconds"] = time.perf_counter() - self.started
        _write_summary(self.out, self.summary)


def _failed(task: dict, error: str) -> dict:
    """The result of a trial that ended without its own (its worker lost)."""
    return {
        "label": task["label"],
        "run_dir": task["run_dir"],
        "status": "failed",
        "error": error,
        "seconds": 0.0,
        "metrics": {},
    }


def _settle_rows(store_path: Path, tasks: list[dict], results: dict) -> None:
    """Make each trial's row in the store say what its result in sweep.json says, where the
    trial could not write it itself (its worker lost, the store locked at its end); then
    reconcile the store's other 'running' rows (trials of a sweep killed earlier)."""
    with RunStore(store_path) as store:
        for task in tasks:
            result = results.get(task["label"])
            run_dir = Path(task["run_dir"])
            row = store.latest(run_dir)
            if result is None or row is None or row["status"] != "running":
                continue
            if run_folder_in_use(run_dir):
                continue  # someone else is running it now
            if result["status"] == "finished":
                metrics = finished_metrics(run_dir) or result["metrics"]
                store.finish(row["id"], metrics, _history(run_dir))
            elif result["status"] == "failed":
                store.fail(row["id"], result.get("error") or "failed")
            else:
                store.interrupt(row["id"], result.get("error") or "interrupted")
        store.reconcile()


def _history(run_dir: Path) -> list[dict]:
    try:
        return read_history(run_dir)
    except DataError:
        return []
