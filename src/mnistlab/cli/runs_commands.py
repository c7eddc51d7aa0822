"""`mnistlab runs list|show|compare|rm`: the run store from the command line.

`list` and `show` first reconcile the store with the run folders (`RunStore.reconcile`): a row
left 'running' by a run that was killed says how it really ended.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from mnistlab.errors import UsageError
from mnistlab.experiments.run_folder import run_folder_in_use
from mnistlab.experiments.store import SORTABLE, STATUSES, RunStore


def register(commands) -> None:
    runs = commands.add_parser("runs", help="list, show and compare recorded runs")
    sub = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    sub.required = True
    for name, helptext in (
        ("list", "one line per run"),
        ("show", "one run in full"),
        ("compare", "the settings that differ, and the metrics"),
        ("rm", "remove rows from the store (run folders only with --delete-folders)"),
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
            p.add_argument("--status", choices=STATUSES)
        elif name == "show":
            p.add_argument("id", type=int)
        elif name == "compare":
            p.add_argument("ids", type=int, nargs="+", metavar="ID")
        else:
            p.add_argument("ids", type=int, nargs="*", metavar="ID")
            p.add_argument(
                "--status",
                choices=[s for s in STATUSES if s != "running"],
                help="also every run with this status",
            )
            p.add_argument(
                "--delete-folders",
                action="store_true",
                help="also delete the run folders of the rows removed",
            )
        handlers = {"list": cmd_list, "show": cmd_show, "compare": cmd_compare, "rm": cmd_rm}
        p.set_defaults(handler=handlers[name])


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


def _reconcile(store: RunStore) -> None:
    """Repair the rows of runs that ended without saying so; one line on stderr if any."""
    changed = {k: v for k, v in store.reconcile().items() if v}
    if changed:
        counts = ", ".join(f"{n} {status}" for status, n in changed.items())
        total = sum(changed.values())
        rows = "row" if total == 1 else "rows"
        print(f"updated {total} {rows} of runs that ended unrecorded: {counts}", file=sys.stderr)


def cmd_list(args) -> int:
    with _open(args) as store:
        _reconcile(store)
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
        f"{'id':>4}  {'status':<11}  {'model':<12}  {'dataset':<14}  "
        + (f"{'val_acc':>8}  " if with_val else "")
        + f"{'test_acc':>8}  {'seconds':>8}  run"
    )
    for r in records:
        config = r["config"]
        print(
            f"{r['id']:>4}  {r['status']:<11}  {config.get('model', '-'):<12}  "
            f"{Path(str(config.get('dataset', '-'))).name:<14}  "
            + (f"{_cell(_metric(r, 'val_accuracy')):>8}  " if with_val else "")
            + f"{_cell(_metric(r, 'test_accuracy')):>8}  {_cell(_metric(r, 'train_seconds')):>8}  "
            f"{r['run_dir']}"
        )
    return 0


def cmd_show(args) -> int:
    with _open(args) as store:
        _reconcile(store)
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


def cmd_rm(args) -> int:
    if not args.ids and args.status is None:
        raise UsageError("runs rm: give the ids of the runs to remove, or --status STATUS")
    with _open(args) as store:
        _reconcile(store)
        records = [store.get(i) for i in dict.fromkeys(args.ids)]
        if args.status is not None:
            seen = {r["id"] for r in records}
            records += [r for r in store.list(status=args.status) if r["id"] not in seen]
        _refuse_live(records)
        folders = _folders_to_delete(records) if args.delete_folders else []
        removed = store.remove([r["id"] for r in records])
    for folder in folders:
        shutil.rmtree(folder)
    rows = "row" if removed == 1 else "rows"
    also = f" and {len(folders)} run folder{'s' if len(folders) != 1 else ''}" if folders else ""
    print(f"removed {removed} {rows}{also} from {args.db}")
    return 0


def _refuse_live(records: list[dict]) -> None:
    """UsageError for a row whose run is still at work (its folder's claim is held: it would
    record itself again). A 'running' row that `reconcile` could not judge (a run from before
    claims) may be removed by its id."""
    for record in records:
        if record["status"] == "running" and run_folder_in_use(Path(record["run_dir"])):
            raise UsageError(
                f"run {record['id']} is still running ({record['run_dir']}); stop it first"
            )


def _folders_to_delete(records: list[dict]) -> list[Path]:
    """The run folders of `records` that exist; UsageError for one that is not a run folder
    (no config.json: never delete a folder this command did not make) or is in use."""
    folders = []
    for record in records:
        folder = Path(record["run_dir"])
        if not folder.exists() or folder in folders:
            continue
        if not (folder / "config.json").is_file():
            raise UsageError(
                f"run {record['id']}: {folder} is not a run folder (no config.json); "
                f"nothing was removed"
            )
        if run_folder_in_use(folder):
            raise UsageError(f"run {record['id']}: {folder} is in use by a run; nothing removed")
        folders.append(folder)
    return folders
