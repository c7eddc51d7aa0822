"""`mnistlab sweep STUDY.toml`: run a study's trials in parallel and write its report."""

from __future__ import annotations

from pathlib import Path

from mnistlab._io import check_destination
from mnistlab.experiments.study import load_study
from mnistlab.experiments.sweep import check_options, run_sweep
from mnistlab.reports.sweep_report import build_sweep_report, configurations


def register(commands) -> None:
    p = commands.add_parser(
        "sweep", help="run a study file's trials in parallel (local processes or Dask)"
    )
    p.add_argument("study", metavar="STUDY.toml")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="local worker processes, one BLAS thread each (default: the cores, at most "
        "the trials)",
    )
    p.add_argument("--executor", choices=["local", "dask"], default="local")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --executor dask: tcp://host:port, or a scheduler file",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/<study name>)")
    p.add_argument("--dry-run", action="store_true", help="list the trials and exit")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-trial lines")
    p.add_argument(
        "--offline",
        action="store_true",
        default=None,
        help="never download a dataset (also MNISTLAB_OFFLINE=1)",
    )
    p.set_defaults(handler=cmd_sweep)


def cmd_sweep(args) -> int:
    study = load_study(args.study)
    out = Path(args.out) if args.out else Path("runs") / study.name
    check_destination(out, "--out", folder=True)
    check_options(args.workers, args.executor, args.scheduler)
    if args.dry_run:
        print(f"study {study.name}: {len(study.trials)} trials, ranked by {study.metric}")
        for trial in study.trials:
            print(f"  {trial.label}")
        return 0
    echo = (lambda *a, **k: None) if args.quiet else print
    summary = run_sweep(
        study,
        out,
        workers=args.workers,
        executor=args.executor,
        scheduler=args.scheduler,
        offline=args.offline,
        progress=False if args.quiet else None,
        echo=echo,
        report=None if args.no_report else build_sweep_report,
    )
    best = configurations(summary["trials"], study.metric, study.goal)
    failed = sum(t["status"] != "finished" for t in summary["trials"])
    line = f"{len(summary['trials'])} trials ({failed} failed) in {summary['wall_seconds']:.1f} s"
    if best:
        params = ", ".join(f"{k}={v}" for k, v in best[0]["params"].items()) or "base"
        top = best[0]
        line += f"; best {params}: {study.metric} {top['mean']:.4f}"
        if top["n"] > 1:
            line += f" ± {top['std']:.4f} over {top['n']} seeds"
    line += f"; store {out / 'runs.db'}"
    if summary.get("report"):
        line += f"; report {summary['report']}"
    print(line)
    return 1 if failed else 0


__all__ = ["register"]
