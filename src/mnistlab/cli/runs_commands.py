"""`mnistlab runs list|show|compare`: the run store from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mnistlab.errors import UsageError
from mnistlab.experiments.store import SORTABLE, RunStore


def register(commands) -> None:
    runs = commands.add_parser("runs", help="list, show and compare recorded runs")
    sub = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    sub.required = True
    for name, helptext in (
        ("list", "one line per run"),
        ("show", "one run in full"),
        ("compare", "the settings that differ, and the metrics"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument(
            "--db",
            default="runs/runs.db",
            metavar="PATH",
            help="the run store (default runs/runs.db)",
        )
        if name == "list":
            p.add_argument("--study", help="only this study's runs")
            p.add_argument("--sort", default="id", help=f"one of {', '.join(SORTABLE)}")
            p.add_argument("--status", choices=["running", "finished", "failed"])
        elif name == "show":
            p.add_argument("id", type=int)
        else:
            p.add_argument("ids", type=int, nargs="+", metavar="ID")
        p.set_defaults(handler={"list": cmd_list, "show": cmd_show, "compare": cmd_compare}[name])


def _open(args) -> RunStore:
    if not Path(args.db).exists():
        raise UsageError(
            f"--db {args.db}: no run store there (runs record themselves in "
            f"runs.db beside their run folder)"
        )
    return RunStore(args.db)


def _metric(record: dict, key: str):
    return (record["metrics"] or {}).get(key)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def cmd_list(args) -> int:
    with _open(args) as store:
        records = store.list(study=args.study, sort=args.sort, status=args.status)
        studies = sorted({r["study"] for r in store.list() if r["study"]}) if not records else []
    if not records:
        # a filter that matches nothing says so, and what it could have matched
        wanted = [
            f"{label} {value!r}"
            for label, value in (("of study", args.study), ("with status", args.status))
            if value is not None
        ]
        known = f" (its studies: {', '.join(studies)})" if args.study and studies else ""
        print(" ".join(["no runs", *wanted, f"in {args.db}{known}"]), file=sys.stderr)
        return 0
    with_val = any(_metric(r, "val_accuracy") is not None for r in records)
    print(
        f"{'id':>4}  {'status':<8}  {'model':<12}  {'dataset':<14}  "
        + (f"{'val_acc':>8}  " if with_val else "")
        + f"{'test_acc':>8}  {'seconds':>8}  run"
    )
    for r in records:
        config = r["config"]
        print(
            f"{r['id']:>4}  {r['status']:<8}  {config.get('model', '-'):<12}  "
            f"{Path(str(config.get('dataset', '-'))).name:<14}  "
            + (f"{_cell(_metric(r, 'val_accuracy')):>8}  " if with_val else "")
            + f"{_cell(_metric(r, 'test_accuracy')):>8}  {_cell(_metric(r, 'train_seconds')):>8}  "
            f"{r['run_dir']}"
        )
    return 0


def cmd_show(args) -> int:
    with _open(args) as store:
        record = store.get(args.id)
    record = {k: v for k, v in record.items() if k != "history"} | {
        "epochs_recorded": len(record["history"] or [])
    }
    print(json.dumps(record, indent=2, sort_keys=True))
    return 0


def cmd_compare(args) -> int:
    with _open(args) as store:
        records = [store.get(i) for i in args.ids]
    keys = sorted({k for r in records for k in r["config"]})
    differing = [k for k in keys if len({json.dumps(r["config"].get(k)) for r in records}) > 1]
    metrics = ["test_accuracy", "test_loss", "test_errors", "train_seconds"]
    width = max([len(k) for k in differing + metrics] + [8])
    print(f"{'':<{width}}  " + "  ".join(f"{'run ' + str(r['id']):>12}" for r in records))
    for key in differing:
        print(
            f"{key:<{width}}  " + "  ".join(f"{_cell(r['config'].get(key)):>12}" for r in records)
        )
    for key in metrics:
        print(f"{key:<{width}}  " + "  ".join(f"{_cell(_metric(r, key)):>12}" for r in records))
    return 0
