"""The frameworks' processes taking turns: `run_in_turns`.

Each framework runs in a process of its own (their thread pools never share a process), started
together with the others; the harness then gives the machine to one at a time, for one timed
unit (an epoch with its floor probe, an inference repeat, a classical fit), so that a shared
host's slow minutes fall on every framework alike. The worker's side is `workloads.Turns`.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnistlab.bench.workloads import SETTLE, TURNS_VARIABLE


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
