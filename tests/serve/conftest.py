"""A trained `digits` run, and `mnistlab serve` on it in a process of its own (port 0: any free
port; the address is read from the line the command prints)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mnistlab.experiments.config import resolve_config
from mnistlab.experiments.runs import train_run


@pytest.fixture(scope="package")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve") / "mlp"
    config = resolve_config(
        {"dataset": "digits", "model": "mlp", "hidden": [64], "epochs": 20, "batch_size": 32}
    )
    train_run(config, folder, store=False, echo=lambda *a, **k: None)
    return folder


@pytest.fixture(scope="package")
def server(run_dir, tmp_path_factory):
    """The base URL of a running `mnistlab serve run_dir --port 0`; stopped after the tests."""
    home = tmp_path_factory.mktemp("server-home")
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    process = subprocess.Popen(
        [sys.executable, "-m", "mnistlab", "serve", str(run_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()
        if not line.startswith("serving "):
            process.kill()
            pytest.fail(f"mnistlab serve did not start: {line}{process.stderr.read()}")
        url = line.split(" on ")[1].split()[0].rstrip("/")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
