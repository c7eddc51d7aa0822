"""`mnistlab report RUN_DIR [RUN_DIR ...]`."""

from __future__ import annotations

from pathlib import Path

from mnistlab._io import check_destination
from mnistlab.cli.data_commands import add_source_options
from mnistlab.errors import UsageError
from mnistlab.reports.comparison import build_comparison
from mnistlab.reports.run_report import build_report


def register(commands) -> None:
    p = commands.add_parser(
        "report", help="write a run's self-contained report.html, or compare several runs"
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument(
        "--out",
        metavar="FILE.html",
        help="with several runs: where to write the comparison (default compare.html)",
    )
    p.add_argument(
        "--layer",
        type=int,
        metavar="N",
        help="MLP layer whose activations are mapped (default: the last hidden one)",
    )
    p.add_argument("--figures", metavar="DIR", help="also save every figure as a file here")
    p.add_argument("--format", choices=["png", "svg"], help="for --figures (default png)")
    add_source_options(p)
    p.set_defaults(handler=cmd_report)


def cmd_report(args) -> int:
    for run_dir in args.run_dirs:
        if not Path(run_dir).is_dir():
            raise UsageError(f"{run_dir}: no such run folder")
    if len(args.run_dirs) > 1:
        # a comparison has no activation map and writes no figure files
        for option, value in (("--layer", args.layer), ("--figures", args.figures)):
            if value is not None:
                raise UsageError(
                    f"{option} applies to one run's report, not to a comparison of several runs"
                )
    if args.format and not args.figures:
        raise UsageError(
            f"--format {args.format} is the file format for --figures DIR; give it too"
        )
    if args.figures:
        check_destination(args.figures, "--figures", folder=True)
    if len(args.run_dirs) == 1:
        if args.out:
            raise UsageError(
                "--out is for comparing several runs; one run's report is "
                "always RUN_DIR/report.html"
            )
        print(
            build_report(
                args.run_dirs[0],
                offline=args.offline,
                layer=args.layer,
                figures=args.figures,
                figure_format=args.format or "png",
            )
        )
        return 0
    out = Path(args.out or "compare.html")
    if out.suffix != ".html":
        raise UsageError(f"--out must end in .html, got {str(out)!r}")
    check_destination(out, "--out")
    print(build_comparison(args.run_dirs, out))
    return 0
