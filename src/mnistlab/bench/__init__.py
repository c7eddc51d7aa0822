"""`mnistlab bench`: the engine side by side with PyTorch, Keras on JAX and scikit-learn.

Each framework runs in a process of its own (their thread pools never share a process), on the
same data and network; the processes take turns, one timed epoch (or repeat, or fit) at a time,
so that the shared host's slow minutes fall on every framework alike. The harness collects
every runner's medians and spreads, and reports the ratios of mnistlab to each peer and to the
bare-GEMM floor, the accuracy each framework reaches after the same budget, the machine, and
the targets.
"""

from __future__ import annotations

import json
import os
import platform
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mnistlab._io import write_text_atomic
from mnistlab.bench.workloads import (
    ACCURACY_EPOCHS,
    HIDDEN,
    SETTLE,
    TITLES,
    TURNS_VARIABLE,
    WORKLOADS,
    normalized,
    summarize,
)
from mnistlab.errors import UsageError

FRAMEWORKS = ("floor", "mnistlab", "seed-numpy", "pytorch", "keras-jax", "scikit-learn")
#: the frameworks mnistlab is compared with for the targets (floor and seed-numpy are not peers)
PEERS = ("pytorch", "keras-jax", "scikit-learn")
TRAINING_ROWS = WORKLOADS[:4]
#: (workload, the most the ratio to the floor may be)
FLOOR_TARGETS = {"train_sgd_b32": 1.7, "train_sgd_b128": 1.5}
PEER_TARGET = 0.8
CLASSICAL_TARGETS = {
    "knn_1nn": ("scikit-learn", 0.7),
    "gaussian": (None, 10.0),
    "softmax": (None, 10.0),
}


def settings(quick: bool, dataset: str = "fashion-mnist") -> dict:
    return {
        "dataset": dataset,
        "epochs": 2 if quick else 5,
        "inference_repeats": 5 if quick else 20,
        "floor_repeats": 2 if quick else 5,
        "knn_test": 2000 if quick else 10000,
        "classical": True,
        "quick": quick,
        # every framework runs once per round, in turn, and its times are pooled: a machine
        # whose speed drifts (shared cores) then slows every framework alike
        "rounds": 1 if quick else 2,
    }


def cpu_times() -> dict | None:
    """The machine's CPU time so far, summed over cores, from /proc/stat (Linux; else None):
    {"total": seconds, "steal": seconds}. Steal is time the hypervisor gave this machine's virtual
    CPUs to someone else: on a shared host it is what makes the same epoch take twice as long."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        ticks = [int(value) for value in fields[1:]]
        per_second = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    steal = ticks[7] if len(ticks) > 7 else 0
    return {"total": sum(ticks[:8]) / per_second, "steal": steal / per_second}


def _worker_env(name: str) -> dict:
    env = dict(os.environ)
    env.pop(TURNS_VARIABLE, None)
    if name == "keras-jax":
        env["KERAS_BACKEND"] = "jax"
    return env


def _worker_command(name: str, spec: dict, out: Path) -> list[str]:
    return [sys.executable, "-m", "mnistlab.bench.worker", name, json.dumps(spec), str(out)]


def _read_result(out: Path, stderr: str, returncode: int) -> dict:
    if out.exists():
        return json.loads(out.read_text(encoding="utf-8"))
    lines = stderr.strip().splitlines()
    return {"error": lines[-1] if lines else f"exit code {returncode}"}


class _Worker:
    """One framework's process under run_in_turns, with its two pipe ends and its accounts."""

    def __init__(self, name: str, spec: dict, folder: Path) -> None:
        self.name, self.out = name, folder / f"{name}.json"
        self.stderr_path = folder / f"{name}.stderr"
        to_worker, self.turn_fd = os.pipe()  # the harness writes a byte: your turn
        self.done_fd, from_worker = os.pipe()  # the worker writes a byte: my unit is done
        env = _worker_env(name)
        env[TURNS_VARIABLE] = f"{to_worker},{from_worker}"
        with open(self.stderr_path, "w", encoding="utf-8") as stderr:
            self.process = subprocess.Popen(
                _worker_command(name, spec, self.out),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                pass_fds=(to_worker, from_worker),
            )
        os.close(to_worker)
        os.close(from_worker)
        self.seconds, self.turns, self.timed_out = 0.0, 0, False
        self.steal = {"steal": 0.0, "cpu": 0.0}

    def take_turn(self, timeout: float) -> bool:
        """Let the worker run one unit; False once it has finished (or died, or timed out)."""
        before, started = cpu_times(), time.perf_counter()
        try:
            os.write(self.turn_fd, b".")
        except BrokenPipeError:
            return False
        ready, _, _ = select.select([self.done_fd], [], [], timeout)
        more = bool(ready) and os.read(self.done_fd, 1) == b"."
        if not ready:
            self.process.kill()
        self.seconds += time.perf_counter() - started
        self.turns += 1
        after = cpu_times()
        if before and after:
            self.steal["steal"] += after["steal"] - before["steal"]
            self.steal["cpu"] += after["total"] - before["total"]
        self.timed_out = not ready
        return more

    def result(self) -> dict:
        self.process.wait()
        os.close(self.turn_fd)
        os.close(self.done_fd)
        stderr = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        if self.timed_out:
            result = {"error": "a single epoch or fit took longer than the time limit"}
        else:
            result = _read_result(self.out, stderr, self.process.returncode)
        result["seconds"] = self.seconds
        result["turns"] = self.turns
        if self.steal["cpu"] > 0:
            result["steal"] = self.steal
        return result


def run_in_turns(
    names, spec: dict, *, pause: float = SETTLE, timeout: float = 1800, log: list | None = None
) -> dict:
    """Run the frameworks' workers side by side, taking turns: each in its own process, started
    together, and one at a time computing one timed unit (an epoch with its floor probe, an
    inference repeat, a classical fit) before the next framework's turn. `pause` seconds of rest
    before each turn let the previous framework's thread pools fall asleep (see SETTLE). The
    results by name; `log`, if given, receives the names in the order their turns ran."""
    with tempfile.TemporaryDirectory(prefix="mnistlab-bench-") as folder:
        workers = [_Worker(name, spec, Path(folder)) for name in names]
        results = {}
        try:
            while workers:
                for worker in list(workers):
                    time.sleep(pause)
                    if log is not None:
                        log.append(worker.name)
                    if not worker.take_turn(timeout):
                        workers.remove(worker)
                        results[worker.name] = worker.result()
        finally:
            for worker in workers:  # interrupted: stop the others
                worker.process.kill()
                worker.process.wait()
        return {name: results[name] for name in names}


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
    *, quick: bool = False, frameworks=FRAMEWORKS, dataset: str = "fashion-mnist", echo=print
) -> dict:
    unknown = [f for f in frameworks if f not in FRAMEWORKS]
    if unknown:
        raise UsageError(f"unknown frameworks {unknown}; valid: {', '.join(FRAMEWORKS)}")
    if "mnistlab" not in frameworks:
        raise UsageError("--only must include mnistlab: every ratio is mnistlab's")
    from mnistlab.data import load_dataset

    data = load_dataset(dataset)  # fail here with the dataset's own message, not in each runner
    spec = settings(quick, dataset)
    spec["n_train"], spec["n_test"] = data.n_train, data.n_test
    spec["n_features"] = int(np.prod(data.image_shape))
    report = {"settings": spec, "machine": machine_info(), "frameworks": {}}
    started = time.perf_counter()
    for round_ in range(spec["rounds"]):
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
    _floor_between(report)
    report["seconds"] = time.perf_counter() - started
    report["ratios"] = ratios(report)
    report["targets"] = targets(report)
    return report


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
    for workload in TRAINING_ROWS:
        times = (ours.get(workload) or {}).get("floor_times")
        if times:
            floor["results"][workload] = summarize(times, measured="between mnistlab's epochs")


def _median(report: dict, framework: str, workload: str) -> float | None:
    result = report["frameworks"].get(framework) or {}
    summary = (result.get("results") or {}).get(workload)
    return summary["median"] if summary else None


def _summary(report: dict, framework: str, workload: str) -> dict | None:
    result = report["frameworks"].get(framework) or {}
    return (result.get("results") or {}).get(workload)


def _relative(report: dict, framework: str, workload: str) -> float | None:
    """The framework's time in units of the GEMM floor timed right after it, in its process."""
    summary = _summary(report, framework, workload)
    return normalized(summary) if summary else None


def ratios(report: dict) -> dict:
    """mnistlab's time divided by each other framework's, per workload.

    Each framework runs in its own process at its own time, and this machine's speed drifts by
    up to 2x between minutes; so every time is first divided by the GEMM floor probe timed right
    after it in the same process, and the ratio is taken of those. The plain ratio of medians is
    kept as `raw`. The ratio to the floor is mnistlab's time over the probe itself.
    """
    out = {}
    for workload in WORKLOADS:
        ours = _median(report, "mnistlab", workload)
        if ours is None:
            continue
        ours_rel = _relative(report, "mnistlab", workload)
        row, raw = {}, {}
        for name in report["frameworks"]:
            if name == "mnistlab":
                continue
            theirs = _median(report, name, workload)
            if not theirs:
                continue
            raw[name] = ours / theirs
            if name == "floor":
                row[name] = ours_rel if ours_rel is not None else raw[name]
                continue
            theirs_rel = _relative(report, name, workload)
            row[name] = ours_rel / theirs_rel if ours_rel and theirs_rel else raw[name]
        peers = {p: row[p] for p in PEERS if p in row}
        if peers:
            fastest = max(peers, key=peers.get)  # the largest ours/theirs: the fastest peer
            row["fastest_peer"] = fastest
            row["fastest_peer_ratio"] = peers[fastest]
        row["raw"] = raw
        out[workload] = row
    return out


def targets(report: dict) -> list[dict]:
    checks = []
    rows = report["ratios"]
    for workload in TRAINING_ROWS:
        row = rows.get(workload, {})
        if "fastest_peer_ratio" in row:
            checks.append(
                {
                    "workload": workload,
                    "target": f"<= {PEER_TARGET}x the fastest peer ({row['fastest_peer']})",
                    "value": row["fastest_peer_ratio"],
                    "met": row["fastest_peer_ratio"] <= PEER_TARGET,
                }
            )
    for workload, limit in FLOOR_TARGETS.items():
        if "floor" in rows.get(workload, {}):
            value = rows[workload]["floor"]
            checks.append(
                {
                    "workload": workload,
                    "target": f"<= {limit}x the GEMM floor",
                    "value": value,
                    "met": value <= limit,
                }
            )
    if "pytorch" in rows.get("inference_10k", {}):
        value = rows["inference_10k"]["pytorch"]
        checks.append(
            {
                "workload": "inference_10k",
                "target": "<= 1.0x PyTorch",
                "value": value,
                "met": value <= 1.0,
            }
        )
    for workload, (peer, limit) in CLASSICAL_TARGETS.items():
        if peer is not None and peer in rows.get(workload, {}):
            value = rows[workload][peer]
            checks.append(
                {
                    "workload": workload,
                    "target": f"<= {limit}x {peer}",
                    "value": value,
                    "met": value <= limit,
                }
            )
        elif peer is None and _median(report, "mnistlab", workload) is not None:
            value = _median(report, "mnistlab", workload)
            checks.append(
                {
                    "workload": workload,
                    "target": f"under {limit:g} s",
                    "value": value,
                    "met": value < limit,
                }
            )
    softmax = (report["frameworks"].get("mnistlab", {}).get("results") or {}).get("softmax")
    if softmax:
        checks.append(
            {
                "workload": "softmax",
                "target": ">= 84% test accuracy",
                "value": softmax["accuracy"],
                "met": softmax["accuracy"] >= 0.84,
            }
        )
    return checks


def _cell(summary: dict | None) -> str:
    if not summary:
        return "-"
    if len(summary.get("times", [])) > 1:
        return f"{summary['median']:.3f} ±{summary['spread']:.3f}"
    return f"{summary['median']:.3f}"


def format_report(report: dict) -> str:
    spec = report["settings"]
    names = [n for n in report["frameworks"]]
    ok = [n for n in names if "results" in report["frameworks"][n]]
    lines = [
        f"mnistlab bench{' --quick' if spec['quick'] else ''}: {spec['dataset']}, "
        f"{spec['n_train']:,} training / {spec['n_test']:,} test images, float32, "
        f"{'-'.join(map(str, (spec['n_features'], *HIDDEN)))}-10 ReLU; "
        f"training: median of {spec['epochs']} timed epochs after 1 warm-up (reshuffle "
        f"included) in each of {spec['rounds']} round{'s' if spec['rounds'] > 1 else ''}, "
        f"the frameworks taking turns epoch by epoch, ± the spread (max - min); "
        f"floor: the bare GEMMs of an epoch, timed between "
        f"mnistlab's epochs, the faster of 1 and {report['machine']['cores']} BLAS threads; "
        f"inference: median of {spec['inference_repeats']} per round; "
        f"the classical rows run once"
        + (
            f" (1-NN on the first {spec['knn_test']:,} test images)"
            if spec["knn_test"] < spec["n_test"]
            else ""
        ),
        "",
    ]
    width = 33
    col = 15
    lines.append("seconds".ljust(width) + "".join(n.rjust(col) for n in ok))
    for workload in WORKLOADS:
        cells = [_cell((report["frameworks"][n].get("results") or {}).get(workload)) for n in ok]
        if all(c == "-" for c in cells):
            continue
        lines.append(TITLES[workload].ljust(width) + "".join(c.rjust(col) for c in cells))
    lines += ["", "samples/s".ljust(width) + "".join(n.rjust(col) for n in ok)]
    for workload in WORKLOADS[:5]:
        n_samples = spec["n_train"] if workload.startswith("train") else spec["n_test"]
        cells = []
        for n in ok:
            median = _median(report, n, workload)
            cells.append(f"{n_samples / median:,.0f}" if median else "-")
        lines.append(TITLES[workload].ljust(width) + "".join(c.rjust(col) for c in cells))
    others = [n for n in ok if n != "mnistlab"]
    lines += [
        "",
        "mnistlab's time / theirs, each time first divided by the GEMM floor timed right after "
        "it in its own process (this machine's speed drifts from minute to minute):",
        "ratio".ljust(width)
        + "".join(n.rjust(col) for n in others)
        + "fastest peer".rjust(col + 6),
    ]
    for workload, row in report["ratios"].items():
        cells = [f"{row[n]:.2f}x" if n in row else "-" for n in others]
        fastest = (
            f"{row['fastest_peer_ratio']:.2f}x {row['fastest_peer']}"
            if "fastest_peer" in row
            else "-"
        )
        lines.append(
            TITLES[workload].ljust(width)
            + "".join(c.rjust(col) for c in cells)
            + fastest.rjust(col + 6)
        )
    accuracy = []
    for n in ok:
        summary = (report["frameworks"][n]["results"]).get("train_adam_b128") or {}
        if summary.get("accuracy") is not None:
            accuracy.append(f"{n} {summary['accuracy']:.4f}")
    if accuracy:
        lines += [
            "",
            f"test accuracy after {ACCURACY_EPOCHS} epochs of Adam at batch 128: "
            + ", ".join(accuracy),
        ]
    for workload in ("knn_1nn", "gaussian", "softmax"):
        parts = []
        for n in ok:
            summary = (report["frameworks"][n]["results"]).get(workload) or {}
            if summary.get("accuracy") is not None:
                parts.append(f"{n} {summary['accuracy']:.4f}")
        if parts:
            lines.append(f"test accuracy, {TITLES[workload]}: " + ", ".join(parts))
    lines += ["", "targets:"]
    for check in report["targets"]:
        value = check["value"]
        shown = (
            f"{value:.2%}"
            if "accuracy" in check["target"]
            else (f"{value:.2f} s" if check["target"].startswith("under") else f"{value:.2f}x")
        )
        lines.append(
            f"  {TITLES[check['workload']]:<33} {check['target']:<38} {shown:>9}  "
            f"{'met' if check['met'] else 'NOT MET'}"
        )
    own = (report["frameworks"].get("floor") or {}).get("results") or {}
    if "gemm_epoch_b32" in own:
        lines += [
            "",
            "the same GEMMs in a process of their own, the faster of 1 and "
            f"{report['machine']['cores']} BLAS threads: "
            + ", ".join(
                f"batch {b} {own[f'gemm_epoch_b{b}']['median']:.3f} s "
                f"({own[f'gemm_epoch_b{b}']['threads']} thread"
                f"{'s' if own[f'gemm_epoch_b{b}']['threads'] > 1 else ''})"
                for b in (32, 128)
            ),
        ]
    stolen = [
        f"{n} {steal['steal'] / steal['cpu']:.0%}"
        for n in ok
        if (steal := report["frameworks"][n].get("steal")) and steal["cpu"] > 0
    ]
    if stolen:
        lines += [
            "",
            "CPU time the hypervisor gave to other guests (steal) while each framework ran: "
            + ", ".join(stolen),
        ]
    lines += ["", "machine: " + _machine_line(report)]
    for n in names:
        result = report["frameworks"][n]
        if "skipped" in result:
            lines.append(f"{n}: skipped, {result['skipped']}")
        elif "error" in result:
            lines.append(f"{n}: failed, {result['error']}")
    lines.append(f"total {report['seconds']:.0f} s")
    return "\n".join(lines)


def _machine_line(report: dict) -> str:
    m = report["machine"]
    parts = [f"{m['cpu']}, {m['cores']} cores, Python {m['python']}"]
    floor = report["frameworks"].get("floor", {})
    if floor.get("blas"):
        parts.append("BLAS " + "; ".join(floor["blas"]))
    for n, result in report["frameworks"].items():
        versions = result.get("versions")
        if versions and n not in ("floor", "seed-numpy"):
            text = " ".join(f"{k} {v}" for k, v in versions.items())
            if result.get("threads"):
                text += f" ({result['threads']} threads)"
            parts.append(text)
    return "; ".join(parts)


def write_json(report: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    write_text_atomic(path, json.dumps(report, indent=1) + "\n")
    return path


__all__ = ["FRAMEWORKS", "format_report", "run_bench", "run_in_turns", "write_json"]
