"""`mnistlab predict RUN_DIR IMAGE...`: classify pictures with a trained run.

Each picture is brought into the form of the run's training images (the style its dataset.json
records, mnistlab.data.preprocess) before the model sees it. A picture that cannot be used gets
one line on stderr naming it; the others are still classified, and the exit code is then 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mnistlab._io import atomic_path, check_destination
from mnistlab.data.images import to_png
from mnistlab.data.preprocess import INVERT, STYLES
from mnistlab.errors import DataError, UsageError
from mnistlab.serve.predictor import Prediction, Predictor


def register(commands) -> None:
    p = commands.add_parser("predict", help="classify image files with a trained run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument(
        "--top",
        type=int,
        metavar="K",
        help="the K likeliest classes (text: default 1; --json: adds a 'top' list)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per image, one per line")
    p.add_argument(
        "--preprocess",
        choices=STYLES,
        help="how to bring a picture into the training images' form (default: the run's, "
        "from its dataset.json)",
    )
    p.add_argument(
        "--invert",
        choices=INVERT,
        default="auto",
        help="auto: invert a picture whose background differs from the training images' (default)",
    )
    p.add_argument(
        "--save-input",
        metavar="DIR",
        help="write the image the model saw for each picture as DIR/<name>.png",
    )
    p.set_defaults(handler=cmd_predict)


def cmd_predict(args) -> int:
    if args.top is not None and args.top < 1:
        raise UsageError(f"--top must be at least 1, got {args.top}")
    if args.save_input:
        check_destination(args.save_input, "--save-input", folder=True)
    predictor = Predictor(args.run_dir, preprocess=args.preprocess, invert=args.invert)
    results = predictor.predict_files(args.images)
    saved_names: set[str] = set()
    for result in results:
        if isinstance(result, DataError):
            print(f"mnistlab: error: {result}", file=sys.stderr)
            continue
        if args.save_input:
            _save_input(result, Path(args.save_input), saved_names)
        print(json.dumps(result.to_json(args.top)) if args.json else _line(result, args.top or 1))
    return 2 if any(isinstance(result, DataError) for result in results) else 0


def _line(result: Prediction, top: int) -> str:
    """`path: label 'class' probability, ...` for the `top` likeliest classes."""
    guesses = ", ".join(
        f"{guess['label']} {guess['class']!r} {guess['probability']:.3f}"
        for guess in result.top(top)
    )
    return f"{result.path}: {guesses}"


def _save_input(result: Prediction, folder: Path, taken: set[str]) -> Path:
    """DIR/<picture's stem>.png (-2, -3 ... for a stem already written by this command)."""
    stem = Path(result.path or "image").stem
    name, count = f"{stem}.png", 1
    while name in taken:
        count += 1
        name = f"{stem}-{count}.png"
    taken.add(name)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / name) as tmp:
        tmp.write_bytes(to_png(result.input))
    return folder / name


__all__ = ["register"]
