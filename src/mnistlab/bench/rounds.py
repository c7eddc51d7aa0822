"""`run_bench`: the whole benchmark, in rounds of the frameworks taking turns.

Every framework runs once per round, in turn (`harness.run_in_turns`), and its times are pooled
over the rounds: a machine whose speed drifts (shared cores) then slows every framework alike.
The report holds the settings, the machine, each framework's results, the ratios and the targets.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np

from mnistlab.bench.cnn import cnn_settings
from mnistlab.bench.harness import run_in_turns
from mnistlab.bench.targets import FRAMEWORKS, FRAMEWORKS_OF, TRAINING_ROWS, ratios, targets
from mnistlab.bench.workloads import WORKLOAD_KINDS, summarize
from mnistlab.data import load_dataset
from mnistlab.errors import UsageError


def settings(quick: bool, dataset: str = "fashion-mnist", workloads=("mlp",)) -> dict:
    """The run's settings, handed to every worker: what it times and how often."""
    return {
        "dataset": dataset,
        "workloads": list(workloads),
        "epochs": 2 if quick else 5,
        "inference_repeats": 5 if quick else 20,
        "floor_repeats": 2 if quick else 5,
        "knn_test": 2000 if quick else 10000,
        "classical": "mlp" in workloads,
        "quick": quick,
        # every framework runs once per round, in turn, and its times are pooled: a machine
        # whose speed drifts (shared cores) then slows every framework alike
        "rounds": 1 if quick else 2,
        **(cnn_settings(quick) if "cnn" in workloads else {}),
    }


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
    }


def run_bench(
    *,
    quick: bool = False,
    frameworks=FRAMEWORKS,
    dataset: str = "fashion-mnist",
    workloads=tuple(WORKLOAD_KINDS),
    echo=print,
) -> dict:
    """Time `frameworks` on `dataset` for the `workloads` ("mlp": the MLP and classical rows,
    "cnn": the CNN rows); the report (see `format.format_report`)."""
    unknown = [f for f in frameworks if f not in FRAMEWORKS]
    if unknown:
        raise UsageError(f"unknown frameworks {unknown}; valid: {', '.join(FRAMEWORKS)}")
    if "mnistlab" not in frameworks:
        raise UsageError("--only must include mnistlab: every ratio is mnistlab's")
    unknown = [w for w in workloads if w not in WORKLOAD_KINDS]
    if unknown or not workloads:
        raise UsageError(
            f"--workloads must name some of {', '.join(WORKLOAD_KINDS)}, got {list(workloads)}"
        )
    frameworks = _with_rows(frameworks, workloads, echo)
    data = load_dataset(dataset)  # fail here with the dataset's own message, not in each runner
    spec = settings(quick, dataset, workloads)
    spec["n_train"], spec["n_test"] = data.n_train, data.n_test
    spec["n_features"] = int(np.prod(data.image_shape))
    spec["image_shape"] = list(data.image_shape)
    report = {"settings": spec, "machine": machine_info(), "frameworks": {}}
    started = time.perf_counter()
    for round_ in range(spec["rounds"]):
        _run_round(report, frameworks, round_, echo)
    _floor_between(report)
    report["seconds"] = time.perf_counter() - started
    report["ratios"] = ratios(report)
    report["targets"] = targets(report)
    return report


def _with_rows(frameworks, workloads, echo) -> list[str]:
    """The frameworks that time any of the workloads (seed-numpy and scikit-learn have no CNN
    rows); a line for each one left out."""
    kept = [f for f in frameworks if any(f in FRAMEWORKS_OF[w] for w in workloads)]
    for name in frameworks:
        if name not in kept:
            echo(f"  {name}: no rows in --workloads {','.join(workloads)}, left out")
    return kept


def _run_round(report: dict, frameworks, round_: int, echo) -> None:
    """One round of every framework still running, their times pooled into the report."""
    spec = report["settings"]
    # the classical models run once: one fit is seconds long and barely drifts
    round_spec = {**spec, "classical": round_ == 0}
    names = [
        name
        for name in frameworks
        # skipped or failed in the first round: not again
        if "results" in report["frameworks"].get(name, {"results": None})
    ]
    echo(
        f"round {round_ + 1}/{spec['rounds']}: {', '.join(names)}, "
        "each in its own process, taking turns epoch by epoch ..."
    )
    for name, result in run_in_turns(names, round_spec).items():
        if "skipped" in result:
            echo(f"  {name}: skipped, {result['skipped']}")
        elif "error" in result:
            echo(f"  {name}: failed, {result['error']}")
        else:
            echo(f"  {name}: {result['seconds']:.1f} s in {result['turns']} turns")
        report["frameworks"][name] = _pool(report["frameworks"].get(name), result)


def _pool(previous: dict | None, result: dict) -> dict:
    """The times of a later round added to the first round's; medians recomputed."""
    if previous is None or "results" not in result:
        return result if previous is None else previous
    pooled = dict(previous)
    pooled["seconds"] = previous.get("seconds", 0.0) + result.get("seconds", 0.0)
    if "steal" in previous and "steal" in result:
        pooled["steal"] = {k: previous["steal"][k] + result["steal"][k] for k in ("steal", "cpu")}
    pooled["results"] = dict(previous["results"])
    for workload, summary in result["results"].items():
        before = pooled["results"].get(workload)
        if before is None:
            pooled["results"][workload] = summary
            continue
        extra = {k: v for k, v in before.items() if k not in ("median", "spread", "times")}
        if "floor_times" in before:
            extra["floor_times"] = before["floor_times"] + summary.get("floor_times", [])
        pooled["results"][workload] = summarize(before["times"] + summary["times"], **extra)
    return pooled


def _floor_between(report: dict) -> None:
    """The training rows' floor: the bare GEMMs timed between mnistlab's own epochs."""
    ours = (report["frameworks"].get("mnistlab") or {}).get("results") or {}
    floor = report["frameworks"].setdefault("floor", {"results": {}})
    if "results" not in floor:
        return
    for workload in (*TRAINING_ROWS, "cnn_train"):
        times = (ours.get(workload) or {}).get("floor_times")
        if times:
            floor["results"][workload] = summarize(times, measured="between mnistlab's epochs")
