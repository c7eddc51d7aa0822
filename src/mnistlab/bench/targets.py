"""What `mnistlab bench` compares: the frameworks, mnistlab's ratios to each, and the targets.

Each framework runs in its own process at its own time, and a shared machine's speed drifts
between minutes; so every time is first divided by the GEMM floor probe timed right after it in
the same process (`workloads.normalized`), and the ratios are taken of those.
"""

from __future__ import annotations

from mnistlab.bench.workloads import WORKLOADS, normalized

FRAMEWORKS = ("floor", "mnistlab", "seed-numpy", "pytorch", "keras-jax", "scikit-learn")
#: the frameworks with rows of each kind of workload (`--workloads`)
FRAMEWORKS_OF = {"mlp": FRAMEWORKS, "cnn": ("floor", "mnistlab", "pytorch", "keras-jax")}
#: the frameworks mnistlab is compared with for the targets (floor and seed-numpy are not peers)
PEERS = ("pytorch", "keras-jax", "scikit-learn")
TRAINING_ROWS = WORKLOADS[:4]
#: (workload, the most the ratio to the floor may be)
FLOOR_TARGETS = {"train_sgd_b32": 1.7, "train_sgd_b128": 1.5}
PEER_TARGET = 0.8
#: workload: (the peer it is compared with, the most the ratio may be), or (None, seconds)
CLASSICAL_TARGETS = {
    "knn_1nn": ("scikit-learn", 0.7),
    "gaussian": (None, 10.0),
    "softmax": (None, 10.0),
}
#: the least test accuracy of softmax regression
SOFTMAX_ACCURACY = 0.84
#: CNN workload: (the most mnistlab's time may be over PyTorch eager's, the moonshot or None)
CNN_TARGETS = {"cnn_train": (1.0, 0.8), "cnn_inference_10k": (1.0, None)}


def summary_of(report: dict, framework: str, workload: str) -> dict | None:
    """A framework's summary of a workload (median, spread, times, ...), None if it has none."""
    result = report["frameworks"].get(framework) or {}
    return (result.get("results") or {}).get(workload)


def median_of(report: dict, framework: str, workload: str) -> float | None:
    summary = summary_of(report, framework, workload)
    return summary["median"] if summary else None


def _relative(report: dict, framework: str, workload: str) -> float | None:
    """The framework's time in units of the GEMM floor timed right after it, in its process."""
    summary = summary_of(report, framework, workload)
    return normalized(summary) if summary else None


def ratios(report: dict) -> dict:
    """mnistlab's time divided by each other framework's, per workload.

    Each time is first divided by the GEMM floor probe timed right after it in the same process
    (see the module's docstring), and the ratio is taken of those. The plain ratio of medians is
    kept as `raw`. The ratio to the floor is mnistlab's time over the probe itself.
    """
    out = {}
    for workload in WORKLOADS:
        ours = median_of(report, "mnistlab", workload)
        if ours is None:
            continue
        ours_rel = _relative(report, "mnistlab", workload)
        row, raw = {}, {}
        for name in report["frameworks"]:
            if name == "mnistlab":
                continue
            theirs = median_of(report, name, workload)
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


def _check(workload: str, target: str, value: float, met: bool) -> dict:
    return {"workload": workload, "target": target, "value": value, "met": met}


def targets(report: dict) -> list[dict]:
    """Every target that the report's ratios (report["ratios"]) and results can be checked
    against: {"workload", "target" (in words), "value", "met"}."""
    rows = report["ratios"]
    return [
        *_training_checks(rows),
        *_inference_checks(rows),
        *_cnn_checks(rows),
        *_classical_checks(report, rows),
        *_accuracy_checks(report),
    ]


def _training_checks(rows: dict) -> list[dict]:
    """The training rows against the fastest peer, and the SGD rows against the GEMM floor."""
    checks = []
    for workload in TRAINING_ROWS:
        row = rows.get(workload, {})
        if "fastest_peer_ratio" in row:
            value = row["fastest_peer_ratio"]
            target = f"<= {PEER_TARGET}x the fastest peer ({row['fastest_peer']})"
            checks.append(_check(workload, target, value, value <= PEER_TARGET))
    for workload, limit in FLOOR_TARGETS.items():
        if "floor" in rows.get(workload, {}):
            value = rows[workload]["floor"]
            checks.append(_check(workload, f"<= {limit}x the GEMM floor", value, value <= limit))
    return checks


def _inference_checks(rows: dict) -> list[dict]:
    if "pytorch" not in rows.get("inference_10k", {}):
        return []
    value = rows["inference_10k"]["pytorch"]
    return [_check("inference_10k", "<= 1.0x PyTorch", value, value <= 1.0)]


def _cnn_checks(rows: dict) -> list[dict]:
    """The CNN rows against PyTorch eager; "moonshot" says whether the moonshot holds too."""
    checks = []
    for workload, (limit, moonshot) in CNN_TARGETS.items():
        if "pytorch" not in rows.get(workload, {}):
            continue
        value = rows[workload]["pytorch"]
        target = f"<= {limit}x PyTorch eager" + (f" (moonshot {moonshot}x)" if moonshot else "")
        check = _check(workload, target, value, value <= limit)
        if moonshot is not None:
            check["moonshot"] = value <= moonshot
        checks.append(check)
    return checks


def _classical_checks(report: dict, rows: dict) -> list[dict]:
    """Each classical model against its peer, or against a time limit where it has none."""
    checks = []
    for workload, (peer, limit) in CLASSICAL_TARGETS.items():
        if peer is not None and peer in rows.get(workload, {}):
            value = rows[workload][peer]
            checks.append(_check(workload, f"<= {limit}x {peer}", value, value <= limit))
        elif peer is None and median_of(report, "mnistlab", workload) is not None:
            value = median_of(report, "mnistlab", workload)
            checks.append(_check(workload, f"under {limit:g} s", value, value < limit))
    return checks


def _accuracy_checks(report: dict) -> list[dict]:
    softmax = (report["frameworks"].get("mnistlab", {}).get("results") or {}).get("softmax")
    if not softmax:
        return []
    value = softmax["accuracy"]
    target = f">= {SOFTMAX_ACCURACY:.0%} test accuracy"
    return [_check("softmax", target, value, value >= SOFTMAX_ACCURACY)]
