"""The bench report as text (`format_report`, what `mnistlab bench` prints) and as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mnistlab._io import write_text_atomic
from mnistlab.bench.targets import median_of
from mnistlab.bench.workloads import ACCURACY_EPOCHS, HIDDEN, TITLES, WORKLOADS

#: the width of the row titles and of each framework's column
TITLE_WIDTH, COLUMN_WIDTH = 33, 15


def format_report(report: dict) -> str:
    """The report as the text `mnistlab bench` prints: how it was timed, the seconds, samples
    per second and ratios per workload, the accuracies, the targets, the machine."""
    names = list(report["frameworks"])
    ok = [n for n in names if "results" in report["frameworks"][n]]
    lines = [_settings_line(report), ""]
    lines += _seconds_table(report, ok)
    lines += ["", *_samples_table(report, ok)]
    lines += ["", *_ratio_table(report, ok)]
    lines += _accuracy_lines(report, ok)
    lines += ["", "targets:", *_target_lines(report)]
    lines += _own_floor_lines(report)
    lines += _steal_lines(report, ok)
    lines += ["", "machine: " + _machine_line(report)]
    for n in names:
        result = report["frameworks"][n]
        if "skipped" in result:
            lines.append(f"{n}: skipped, {result['skipped']}")
        elif "error" in result:
            lines.append(f"{n}: failed, {result['error']}")
    lines.append(f"total {report['seconds']:.0f} s")
    return "\n".join(lines)


def write_json(report: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    write_text_atomic(path, json.dumps(report, indent=1) + "\n")
    return path


def _settings_line(report: dict) -> str:
    """What was timed and how: the data, the network, the repeats and rounds."""
    spec = report["settings"]
    return (
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
        )
    )


def _row(title: str, cells: list[str]) -> str:
    return title.ljust(TITLE_WIDTH) + "".join(c.rjust(COLUMN_WIDTH) for c in cells)


def _cell(summary: dict | None) -> str:
    if not summary:
        return "-"
    if len(summary.get("times", [])) > 1:
        return f"{summary['median']:.3f} ±{summary['spread']:.3f}"
    return f"{summary['median']:.3f}"


def _seconds_table(report: dict, ok: list[str]) -> list[str]:
    """Median seconds ± spread of every workload some framework ran."""
    lines = [_row("seconds", ok)]
    for workload in WORKLOADS:
        cells = [_cell((report["frameworks"][n].get("results") or {}).get(workload)) for n in ok]
        if all(c == "-" for c in cells):
            continue
        lines.append(_row(TITLES[workload], cells))
    return lines


def _samples_table(report: dict, ok: list[str]) -> list[str]:
    """Images per second of the training and inference workloads."""
    spec = report["settings"]
    lines = [_row("samples/s", ok)]
    for workload in WORKLOADS[:5]:
        n_samples = spec["n_train"] if workload.startswith("train") else spec["n_test"]
        cells = []
        for n in ok:
            median = median_of(report, n, workload)
            cells.append(f"{n_samples / median:,.0f}" if median else "-")
        lines.append(_row(TITLES[workload], cells))
    return lines


def _ratio_table(report: dict, ok: list[str]) -> list[str]:
    """mnistlab's time over each other framework's, and the fastest peer."""
    others = [n for n in ok if n != "mnistlab"]
    lines = [
        "mnistlab's time / theirs, each time first divided by the GEMM floor timed right after "
        "it in its own process (this machine's speed drifts from minute to minute):",
        _row("ratio", others) + "fastest peer".rjust(COLUMN_WIDTH + 6),
    ]
    for workload, row in report["ratios"].items():
        cells = [f"{row[n]:.2f}x" if n in row else "-" for n in others]
        fastest = (
            f"{row['fastest_peer_ratio']:.2f}x {row['fastest_peer']}"
            if "fastest_peer" in row
            else "-"
        )
        lines.append(_row(TITLES[workload], cells) + fastest.rjust(COLUMN_WIDTH + 6))
    return lines


def _accuracies(report: dict, ok: list[str], workload: str) -> list[str]:
    """ "framework accuracy" for each framework that measured the workload's test accuracy."""
    parts = []
    for n in ok:
        summary = (report["frameworks"][n]["results"]).get(workload) or {}
        if summary.get("accuracy") is not None:
            parts.append(f"{n} {summary['accuracy']:.4f}")
    return parts


def _accuracy_lines(report: dict, ok: list[str]) -> list[str]:
    lines = []
    adam = _accuracies(report, ok, "train_adam_b128")
    if adam:
        lines += [
            "",
            f"test accuracy after {ACCURACY_EPOCHS} epochs of Adam at batch 128: "
            + ", ".join(adam),
        ]
    for workload in ("knn_1nn", "gaussian", "softmax"):
        parts = _accuracies(report, ok, workload)
        if parts:
            lines.append(f"test accuracy, {TITLES[workload]}: " + ", ".join(parts))
    return lines


def _target_lines(report: dict) -> list[str]:
    lines = []
    for check in report["targets"]:
        value = check["value"]
        if "accuracy" in check["target"]:
            shown = f"{value:.2%}"
        elif check["target"].startswith("under"):
            shown = f"{value:.2f} s"
        else:
            shown = f"{value:.2f}x"
        lines.append(
            f"  {TITLES[check['workload']]:<33} {check['target']:<38} {shown:>9}  "
            f"{'met' if check['met'] else 'NOT MET'}"
        )
    return lines


def _own_floor_lines(report: dict) -> list[str]:
    """The floor's GEMMs timed in a process of their own (beside the floor between epochs)."""
    own = (report["frameworks"].get("floor") or {}).get("results") or {}
    if "gemm_epoch_b32" not in own:
        return []
    parts = []
    for batch in (32, 128):
        summary = own[f"gemm_epoch_b{batch}"]
        threads = summary["threads"]
        parts.append(
            f"batch {batch} {summary['median']:.3f} s "
            f"({threads} thread{'s' if threads > 1 else ''})"
        )
    return [
        "",
        "the same GEMMs in a process of their own, the faster of 1 and "
        f"{report['machine']['cores']} BLAS threads: " + ", ".join(parts),
    ]


def _steal_lines(report: dict, ok: list[str]) -> list[str]:
    stolen = [
        f"{n} {steal['steal'] / steal['cpu']:.0%}"
        for n in ok
        if (steal := report["frameworks"][n].get("steal")) and steal["cpu"] > 0
    ]
    if not stolen:
        return []
    return [
        "",
        "CPU time the hypervisor gave to other guests (steal) while each framework ran: "
        + ", ".join(stolen),
    ]


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
