"""`mnistlab train` killed with SIGKILL at random moments, many times over: every folder left
behind must either resume to the weights of an uninterrupted run, bit for bit, or be refused in
one line with exit 2.

Each run is a fresh process forked from a server that has already imported mnistlab (and
matplotlib, for the report), so that the kills land in the run's own work (data, training,
checkpoints, the model files, metrics, the report, the store) rather than in Python's start-up.
The process then runs `mnistlab.cli.main`, exactly what `python -m mnistlab` runs.
"""

from __future__ import annotations

import collections
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mnistlab.experiments.store import RunStore

SERVER = r"""
import json, os, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot
from mnistlab.cli import main
from mnistlab.data import load_dataset

load_dataset("digits")  # its reader's imports, paid once

for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        code = 70
        try:
            code = main(request["argv"])
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""

#: a run of about 150 short epochs (a checkpoint each), then its files, metrics and report
TRAIN = ["--dataset", "digits", "--hidden", "64", "--epochs", "150", "--batch-size", "8"]
#: kills to make, and the seconds to make them in (more if the minimum is not reached)
KILLS, MIN_KILLS, SECONDS = 30, 15, 40.0
#: each run is killed after a random delay up to this many seconds (the first of a chain
#: within its first moments: data, config.json, the first checkpoint), resumed, killed again...
#: KILLS_PER_CHAIN times, so that a chain's kills fall all along the run (each resume goes on
#: from the last checkpoint); then it is resumed to its end
FIRST_DELAY, MAX_DELAY, KILLS_PER_CHAIN = 0.25, 1.0, 8


class ForkServer:
    """A process that forks one `mnistlab` command at a time on request."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self._pending = b""

    def _line(self, timeout: float | None) -> str | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.process.stdout], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.process.stdout.fileno(), 4096)
            assert chunk, "the fork server ended"
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode()

    def run(self, argv: list[str], kill_after: float | None = None) -> tuple[int, str]:
        """(exit code, stderr) of `mnistlab ARGV`, SIGKILLed after `kill_after` seconds if it
        is still running then (exit code -9)."""
        stderr = self.folder / "stderr.txt"
        request = {"argv": argv, "stdout": str(self.folder / "stdout.txt"), "stderr": str(stderr)}
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.flush()
        pid = int(self._line(60))
        handle = os.pidfd_open(pid)  # a signal to this process only, even once it has ended
        try:
            code = self._line(kill_after)
            if code is None:
                signal.pidfd_send_signal(handle, signal.SIGKILL)
                code = self._line(60)
        finally:
            os.close(handle)
        return int(code), stderr.read_text()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def _phase(folder: Path) -> str:
    """Where a kill found the run, from what its folder holds."""
    if not (folder / "config.json").exists():
        return "before config.json"
    if (folder / "metrics.json").exists():
        return "after metrics.json" if not (folder / "report.html").exists() else "after report"
    if (folder / "checkpoint.npz").exists():
        return "training (checkpoint saved)"
    return "before the first checkpoint"


def _weights(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(run_dir / "weights.npz") as archive:
        return {key: archive[key].copy() for key in archive.files}


def _check_complete(folder: Path, reference: dict[str, np.ndarray]) -> None:
    weights = _weights(folder)
    assert sorted(weights) == sorted(reference)
    for key in weights:
        np.testing.assert_array_equal(weights[key], reference[key], err_msg=f"{folder}: {key}")
    assert (folder / "report.html").is_file()
    json.loads((folder / "metrics.json").read_text(), parse_constant=_refuse_constant)
    assert [p.name for p in folder.iterdir() if ".tmp" in p.name] == []
    with RunStore(folder.parent / "runs.db") as store:
        assert store.latest(folder.resolve())["status"] == "finished"


def _refuse_constant(name):
    raise AssertionError(f"bare {name} in metrics.json")


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux's pidfd (5.3+)")
def test_train_killed_at_random_moments_resumes_exactly_or_is_refused(tmp_path):
    server = ForkServer(tmp_path)
    try:
        reference = tmp_path / "reference"
        code, stderr = server.run(["train", *TRAIN, "--quiet", "--out", str(reference)])
        assert code == 0, stderr
        counts, phases = _kill_many(server, tmp_path, _weights(reference))
    finally:
        server.close()
    print(f"\nkill test: {dict(counts)}; kills by phase: {dict(phases)}")
    assert counts["kills"] >= MIN_KILLS
    assert counts["kills survived"] + counts["refused"] == counts["kills"]


def _kill_many(server, tmp_path, expected):
    """Chains of runs: a run killed at a random moment, resumed and killed again, then resumed
    to its end (or refused)."""
    rng = np.random.default_rng(26)
    counts, phases = collections.Counter(), collections.Counter()
    deadline = time.monotonic() + SECONDS
    chain = 0
    while counts["kills"] < KILLS and (time.monotonic() < deadline or counts["kills"] < MIN_KILLS):
        folder = tmp_path / "runs" / f"run{chain}"
        chain += 1
        argv = ["train", *TRAIN, "--quiet", "--out", str(folder)]
        kills = 0
        while True:
            delay = rng.uniform(0.0, FIRST_DELAY if kills == 0 else MAX_DELAY)
            if kills == KILLS_PER_CHAIN:
                delay = None
            code, stderr = server.run(argv, kill_after=delay)
            if code == -signal.SIGKILL:
                kills += 1
                phases[_phase(folder)] += 1
                argv = ["train", "--resume", str(folder), "--quiet"]
                continue
            if code == 2 and argv[1] == "--resume":
                lines = stderr.strip().splitlines()
                assert len(lines) == 1 and lines[0].startswith("mnistlab: error: "), stderr
                # only a folder killed before it held a run is refused: any later one resumes
                assert not (folder / "config.json").exists(), stderr
                counts["refused"] += 1
                counts["kills survived"] += kills - 1
                counts[f"refused: {lines[0].split(': ')[-1][:40]}"] += 1
                break
            assert code == 0, f"exit {code} after {kills} kills: {stderr}"
            _check_complete(folder, expected)
            counts["kills survived"] += kills
            counts["chains resumed to identical weights"] += kills > 0
            break
        counts["kills"] += kills
    return counts, phases
