"""`mnistlab bench`: mnistlab against PyTorch, Keras on JAX and scikit-learn, on this machine."""

from __future__ import annotations

import sys

from mnistlab._io import check_destination
from mnistlab.bench import FRAMEWORKS, format_report, run_bench, write_json
from mnistlab.bench.breakdown import format_breakdown, run_breakdown
from mnistlab.errors import UsageError


def register(commands) -> None:
    p = commands.add_parser(
        "bench",
        help="time mnistlab against PyTorch, Keras+JAX, scikit-learn and the bare-GEMM floor",
    )
    p.add_argument(
        "--quick", action="store_true", help="2 timed epochs, fewer repeats, 1-NN on 2,000 images"
    )
    p.add_argument("--json", metavar="FILE", help="also write every number to FILE as JSON")
    p.add_argument(
        "--only",
        metavar="NAME,...",
        help="frameworks to run (floor, mnistlab, seed-numpy, pytorch, keras-jax, scikit-learn)",
    )
    p.add_argument(
        "--workloads",
        metavar="KIND,...",
        default="mlp,cnn",
        help="rows to time: mlp (the MLP and classical rows), cnn (the cnn preset's); default both",
    )
    p.add_argument(
        "--cnn-breakdown",
        action="store_true",
        help="instead of the bench: where a step of mnistlab's CNN goes, layer by layer "
        "(20 timed steps with --quick, else 100)",
    )
    p.add_argument("--dataset", default="fashion-mnist", help="named dataset or path")
    p.set_defaults(handler=cmd_bench)


def cmd_bench(args) -> int:
    if args.cnn_breakdown:
        print(format_breakdown(run_breakdown(quick=args.quick, dataset=args.dataset)))
        return 0
    if args.json:  # before a run of several minutes, not after it
        check_destination(args.json, "--json")
    frameworks = FRAMEWORKS
    if args.only:
        frameworks = tuple(f.strip() for f in args.only.split(",") if f.strip())
        if not frameworks:
            raise UsageError(f"--only must name frameworks, got {args.only!r}")
    report = run_bench(
        quick=args.quick,
        frameworks=frameworks,
        dataset=args.dataset,
        workloads=tuple(w.strip() for w in args.workloads.split(",") if w.strip()),
        echo=lambda line: print(line, file=sys.stderr),
    )
    print(format_report(report))
    if args.json:
        print(f"json: {write_json(report, args.json)}")
    failed = [n for n, r in report["frameworks"].items() if "error" in r]
    return 1 if "mnistlab" in failed else 0


__all__ = ["register"]
