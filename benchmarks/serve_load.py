"""`mnistlab serve` under load: answered requests per second from concurrent clients.

    python benchmarks/serve_load.py [RUN_DIR] [--clients 8] [--seconds 10]

Starts `mnistlab serve RUN_DIR --port 0` in a process of its own (without RUN_DIR it first
trains an MLP, --hidden 256,128 for one epoch, on Fashion-MNIST, or on `digits` where
Fashion-MNIST is not installed), then runs `--clients` threads that each POST drawings to
/api/predict, one request after another, for `--seconds`: 280x280 PNGs of pen strokes, what the
page's canvas sends. Prints the answered requests per second, latency percentiles and the
errors. The clients run on the same machine as the server (their own CPU time included), talk
to 127.0.0.1 only, and stop by themselves at the end of the time.

Measured on this machine (2 cores, shared with other work while it ran; the 8 clients on the
same cores), MLP 784-256-128-10 trained 10 epochs on Fashion-MNIST, 8 clients, 10 s:
    294 requests/s answered (2943 in 10.0 s); latency p50 22.6 ms, p90 42.6 ms, p99 102.6 ms;
    errors 0
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def drawings(count: int, seed: int = 0) -> list[bytes]:
    """`count` PNGs of a few random strokes, black on a white 280x280 canvas."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        canvas = Image.new("RGB", (280, 280), "white")
        pen = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(1, 4))):
            points = [tuple(int(v) for v in rng.integers(40, 240, size=2)) for _ in range(4)]
            pen.line(points, fill="black", width=20, joint="curve")
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def train_run(folder: Path) -> Path:
    run = folder / "mlp"
    dataset = "fashion-mnist" if FASHION.is_file() else "digits"
    subprocess.run(
        [sys.executable, "-m", "mnistlab", "train", "--dataset", dataset, "--hidden", "256,128",
         "--epochs", "1", "--quiet", "--out", str(run)],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return run


def client(url: str, bodies: list[bytes], stop: float, latencies: list, errors: list) -> None:
    with httpx.Client(timeout=30) as http:
        index = 0
        while time.perf_counter() < stop:
            started = time.perf_counter()
            response = http.post(
                url, content=bodies[index % len(bodies)], headers={"content-type": "image/png"}
            )
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors.append(response.status_code)
            index += 1


def measure(run: Path, clients: int, seconds: float) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "mnistlab", "serve", str(run), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base = server.stdout.readline().split(" on ")[1].split()[0].rstrip("/")
        bodies = drawings(16)
        httpx.post(base + "/api/predict", content=bodies[0], headers={"content-type": "image/png"})
        latencies: list[float] = []
        errors: list[int] = []
        stop = time.perf_counter() + seconds
        threads = [
            threading.Thread(
                target=client, args=(base + "/api/predict", bodies, stop, latencies, errors)
            )
            for _ in range(clients)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=10)
    ms = np.percentile(np.array(latencies) * 1e3, [50, 90, 99])
    print(
        f"{len(latencies) / elapsed:.0f} requests/s answered ({len(latencies)} in {elapsed:.1f} s,"
        f" {clients} clients); latency p50 {ms[0]:.1f} ms, p90 {ms[1]:.1f} ms, p99 {ms[2]:.1f} "
        f"ms; errors {len(errors)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", type=Path, help="default: train an MLP first")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if args.run_dir is not None:
        measure(args.run_dir, args.clients, args.seconds)
        return
    with tempfile.TemporaryDirectory() as folder:
        measure(train_run(Path(folder)), args.clients, args.seconds)


if __name__ == "__main__":
    main()
