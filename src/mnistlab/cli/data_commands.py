"""`mnistlab data list|fetch|info|show`."""

from __future__ import annotations

import argparse
import json
import sys

from mnistlab._io import check_destination
from mnistlab.data import REGISTRY, fetch, get_spec, load_dataset
from mnistlab.data.digits import digits_file
from mnistlab.data.sources import locate
from mnistlab.errors import MnistlabError, UsageError
from mnistlab.reports import plots


def add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", help="look here first for named datasets")
    parser.add_argument(
        "--offline",
        action="store_true",
        default=None,
        help="never download (also MNISTLAB_OFFLINE=1); fail with where it looked",
    )


def register(commands) -> None:
    data = commands.add_parser("data", help="list, fetch, inspect and show datasets")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("list", help="the named datasets and where each is found")
    p.add_argument("--data-dir", metavar="DIR")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("fetch", help="download and verify a named dataset into the cache")
    p.add_argument("name", choices=[n for n, s in REGISTRY.items() if s.kind == "idx"])
    p.add_argument("--data-dir", metavar="DIR", help="download here instead of the user cache")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_fetch)

    p = sub.add_parser("info", help="split sizes, image shape, pixel range, class counts")
    p.add_argument("dataset", metavar="NAME|PATH")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    add_source_options(p)
    p.set_defaults(handler=cmd_info)

    p = sub.add_parser("show", help="write a grid of examples per class (or --hist)")
    p.add_argument("dataset", metavar="NAME|PATH")
    p.add_argument("--out", required=True, metavar="FILE.png", help="image to write (.png/.svg)")
    p.add_argument("--hist", action="store_true", help="train-versus-test class distribution")
    p.add_argument("--split", choices=["train", "test"], help="images from (default train)")
    p.add_argument("--per-class", type=int, metavar="N", help="examples of each class (10)")
    p.add_argument("--seed", type=int, help="which examples are drawn (0)")
    add_source_options(p)
    p.set_defaults(handler=cmd_show)


def _where(name: str, data_dir) -> str:
    spec = get_spec(name)
    if spec.kind == "digits":
        try:
            return str(digits_file())
        except MnistlabError:
            return "not present (install scikit-learn)"
    files = locate(spec, data_dir)
    return str(files["train_images"].parent) if files else "not present"


def cmd_list(args) -> int:
    rows = [(name, spec.title, _where(name, args.data_dir)) for name, spec in REGISTRY.items()]
    width = max(len(r[0]) for r in rows)
    for name, title, where in rows:
        print(f"{name:<{width}}  {where}\n{'':<{width}}  {title}")
    return 0


def cmd_fetch(args) -> int:
    folder = fetch(get_spec(args.name), args.data_dir, progress=None if not args.quiet else False)
    print(f"{args.name}: verified in {folder}")
    return 0


def _load(args):
    return load_dataset(args.dataset, data_dir=args.data_dir, offline=args.offline)


def cmd_info(args) -> int:
    dataset = _load(args)
    info = dataset.info()
    if args.json:
        json.dump(info, sys.stdout, indent=2)
        print()
        return 0
    shape = "x".join(str(s) for s in dataset.image_shape)
    print(f"dataset      {dataset.name} ({dataset.format}) from {dataset.source}")
    print(f"images       {shape}, {info['dtype']}, pixel_max {dataset.pixel_max:g}")
    for split in ("train", "test"):
        lo, hi = info[split]["pixel_range"]
        print(f"{split:<12} {info[split]['n']:>7} images, pixels {lo:g}..{hi:g}")
    width = max(len(n) for n in dataset.class_names)
    print()
    print(f"{'class':<{width + 5}} {'train':>7} {'test':>7}")
    train_counts, test_counts = dataset.class_counts("train"), dataset.class_counts("test")
    for index, name in enumerate(dataset.class_names):
        print(f"{index:>3}  {name:<{width}} {train_counts[index]:>7} {test_counts[index]:>7}")
    print(f"{'total':<{width + 5}} {train_counts.sum():>7} {test_counts.sum():>7}")
    return 0


def cmd_show(args) -> int:
    if args.hist:
        # the distribution counts both splits, all of their images
        keys = ("split", "per_class", "seed")
        given = [f"--{k.replace('_', '-')}" for k in keys if getattr(args, k) is not None]
        if given:
            raise UsageError(
                f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for the example grid; "
                "--hist counts every image of both splits"
            )
    split = args.split or "train"
    per_class = 10 if args.per_class is None else args.per_class
    seed = 0 if args.seed is None else args.seed
    if per_class <= 0:
        raise UsageError(f"--per-class must be positive, got {per_class}")
    if seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {seed}")
    if not args.out.lower().endswith((".png", ".svg")):
        raise UsageError(f"--out must end in .png or .svg, got {args.out!r}")
    check_destination(args.out, "--out")
    dataset = _load(args)
    if args.hist:
        fig = plots.class_distribution(
            dataset.class_counts("train"),
            dataset.class_counts("test"),
            dataset.class_names,
            title=f"{dataset.name}: class distribution",
        )
    else:
        images = dataset.x_train if split == "train" else dataset.x_test
        labels = dataset.y_train if split == "train" else dataset.y_test
        fig = plots.example_grid(
            images,
            labels,
            dataset.class_names,
            per_class=per_class,
            seed=seed,
            title=f"{dataset.name} ({split})",
        )
    path = plots.save_figure(fig, args.out)
    print(path)
    return 0
