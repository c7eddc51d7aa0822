"""The bench report as text (`format_report`, what `mnistlab bench` prints) and as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mnistlab._io import write_text_atomic
from mnistlab.bench.targets import median_of, summary_of
from mnistlab.bench.workloads import ACCURACY_EPOCHS, HIDDEN, TITLES, WORKLOADS

#: the width of the row titles and of each framework's column
TITLE_WIDTH, COLUMN_WIDTH = 33, 15
#: the rows shown in images per second: training and inference
SAMPLE_ROWS = (*WORKLOADS[:5], "cnn_train", "cnn_inference_10k")


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
    """What was timed and how: the data, the networks, the repeats and rounds."""
    spec = report["settings"]
    workloads = spec.get("workloads", ["mlp"])
    parts = [
        f"mnistlab bench{' --quick' if spec['quick'] else ''}: {spec['dataset']}, "
        f"{spec['n_train']:,} training / {spec['n_test']:,} test images, float32"
    ]
    if "mlp" in workloads:
        parts.append(_mlp_settings(report))
    if "cnn" in workloads:
        parts.append(_cnn_settings(report))
    return "; ".join(parts)


def _mlp_settings(report: dict) -> str:
    spec = report["settings"]
    return (
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


def _cnn_settings(report: dict) -> str:
    """The CNN rows: the network, the epochs (and the share of them timed in --quick)."""
    spec, net = report["settings"], report["settings"]["cnn"]
    blocks = " -> ".join(
        f"conv {f} {net['kernel']}x{net['kernel']} {net['padding']} -> pool {net['pool']}"
        for f in net["conv"]
    )
    dense = "".join(f" -> dense {h} -> dropout {net['dropout']:g}" for h in net["hidden"])
    epochs = "epochs"
    if spec["cnn_train"] and spec["cnn_train"] < spec["n_train"]:
        epochs = (
            f"epochs over the first {spec['cnn_train']:,} training images only, "
            f"times scaled up x{spec['n_train'] / spec['cnn_train']:.2f} to {spec['n_train']:,}"
        )
    return (
        f"CNN rows: the cnn preset, {blocks}{dense} -> 10, {net['activation']}, "
        f"{net['optimizer']} {net['lr']:g}, batch {net['batch_size']}: median of "
        f"{spec['cnn_epochs']} timed {epochs} after 1 warm-up in each round; floor: the "
        f"im2col GEMMs of the same steps, {spec['cnn_floor_steps']} steps timed after each "
        f"epoch and scaled to the epoch; inference: median of {spec['cnn_inference_repeats']}, "
        "mnistlab in its own chunks, the peers in chunks of 1,000"
    )


def _row(title: str, cells: list[str]) -> str:
    # a cell as wide as its column (a CNN epoch of 100 s and more, with its spread) still
    # keeps a space from its neighbour
    return title.ljust(TITLE_WIDTH) + "".join(f" {c}".rjust(COLUMN_WIDTH) for c in cells)


def _cell(summary: dict | None) -> str:
    if not summary:
        return "-"
    # four significant digits, so that a CNN epoch's minute fits the column as a second does
    digits = 3 if summary["median"] < 10 else 2 if summary["median"] < 100 else 1
    if len(summary.get("times", [])) > 1:
        return f"{summary['median']:.{digits}f} ±{summary['spread']:.{digits}f}"
    return f"{summary['median']:.{digits}f}"


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
    for workload in SAMPLE_ROWS:
        n_samples = spec["n_test"] if "inference" in workload else spec["n_train"]
        cells = []
        for n in ok:
            median = median_of(report, n, workload)
            cells.append(f"{n_samples / median:,.0f}" if median else "-")
        if any(c != "-" for c in cells):
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
    cnn = _accuracies(report, ok, "cnn_train")
    if cnn:
        # the budget each framework trained on (the floor's row has none)
        trained = [summary_of(report, n, "cnn_train") or {} for n in ok]
        summary = next(s for s in trained if "accuracy_epochs" in s)
        lines += [] if lines else [""]
        lines.append(
            f"CNN test accuracy after {summary['accuracy_epochs']} epochs of "
            f"{summary['images_per_epoch']:,} images (first round): " + ", ".join(cnn)
        )
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
        verdict = "met" if check["met"] else "NOT MET"
        if check.get("moonshot"):
            verdict += ", the moonshot too"
        lines.append(
            f"  {TITLES[check['workload']]:<33} {check['target']:<38} {shown:>9}  {verdict}"
        )
    return lines


def _own_floor_lines(report: dict) -> list[str]:
    """The floor's GEMMs timed in a process of their own (beside the floor between epochs),
    and the CNN epoch against its floor."""
    own = (report["frameworks"].get("floor") or {}).get("results") or {}
    parts = []
    for batch in (32, 128):
        summary = own.get(f"gemm_epoch_b{batch}")
        if summary:
            threads = summary["threads"]
            parts.append(
                f"batch {batch} {summary['median']:.3f} s "
                f"({threads} thread{'s' if threads > 1 else ''})"
            )
    if "cnn_gemm_epoch" in own:
        parts.append(f"the CNN's epoch {own['cnn_gemm_epoch']['median']:.3f} s")
    lines = []
    if parts:
        lines += [
            "",
            "the same GEMMs in a process of their own, the faster of 1 and "
            f"{report['machine']['cores']} BLAS threads: " + ", ".join(parts),
        ]
    return lines + _cnn_floor_lines(report)


def _cnn_floor_lines(report: dict) -> list[str]:
    """mnistlab's CNN epoch against the GEMMs it cannot avoid, and where to see the rest."""
    row = report["ratios"].get("cnn_train") or {}
    ours = median_of(report, "mnistlab", "cnn_train")
    floor = median_of(report, "floor", "cnn_train")
    if "floor" not in row or not ours or not floor:
        return []
    return [
        f"mnistlab's CNN epoch {ours:.2f} s against its im2col GEMMs alone {floor:.2f} s: "
        f"{row['floor']:.2f}x; where the rest goes: mnistlab bench --cnn-breakdown"
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
