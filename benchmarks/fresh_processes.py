"""Run a benchmark's child program in fresh processes, one after another, and read each one's
result: the JSON object printed on its last line. On a shared 2-core machine a process's speed
settles at a level of its own (benchmarks/cnn_processes.py), so the scripts that compare two
variants alternate them inside each child and report each process on a line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator


def child_results(program: str, args: list[str], processes: int) -> Iterator[dict]:
    """For each of `processes` fresh interpreters running `program` (python -c) with `args`:
    the JSON object of its last line of output. A child that fails raises CalledProcessError."""
    for _ in range(processes):
        out = subprocess.run(
            [sys.executable, "-c", program, *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        yield json.loads(out.strip().splitlines()[-1])
