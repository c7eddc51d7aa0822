"""`mnistlab export RUN_DIR --format onnx --out model.onnx`: a trained run for other runtimes.

The ONNX graph (mnistlab.export.onnx) takes what the model's predict_proba takes; its metadata
carries the run's class names and how pictures were preprocessed, so that a program can feed it
without mnistlab.
"""

from __future__ import annotations

import json
from pathlib import Path

from mnistlab._io import check_destination
from mnistlab.data.preprocess import Preprocessing
from mnistlab.experiments.run_folder import read_json
from mnistlab.export.onnx import OPSET, to_onnx
from mnistlab.models import load_model

FORMATS = ("onnx",)


def register(commands) -> None:
    p = commands.add_parser("export", help="write a trained run's model for another runtime")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="onnx (the default)")
    p.add_argument("--out", metavar="FILE", help="default RUN_DIR/model.onnx")
    p.add_argument(
        "--no-fold-batchnorm",
        dest="fold_batchnorm",
        action="store_false",
        help="keep each BatchNorm as a BatchNormalization node instead of folding it into the "
        "Dense layer before it",
    )
    p.set_defaults(handler=cmd_export)


def cmd_export(args) -> int:
    run_dir = Path(args.run_dir)
    out = Path(args.out) if args.out else run_dir / "model.onnx"
    check_destination(out, "--out")
    model = load_model(run_dir)
    proto = to_onnx(model, out, metadata=_run_metadata(run_dir), fold_batchnorm=args.fold_batchnorm)
    n_classes = proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    print(
        f"wrote {out} ({out.stat().st_size / 1e3:,.1f} kB): {model.model_name} as ONNX opset "
        f"{OPSET}; input 'input' float32 (N, {model.n_features_in_}), outputs 'probabilities' "
        f"float32 (N, {n_classes}) and 'label' int64 (N,)"
    )
    return 0


def _run_metadata(run_dir: Path) -> dict[str, str]:
    """What a program needs besides the graph to feed it pictures, each value as JSON text:
    the dataset's name, class names, image shape, pixel_max, and its preprocessing style and
    background (mnistlab.data.preprocess)."""
    dataset_path = run_dir / "dataset.json"
    if not dataset_path.exists():
        return {}
    dataset = read_json(dataset_path)
    preprocessing = Preprocessing.from_run(dataset)
    meta = {
        "dataset_name": dataset.get("name"),
        "class_names": dataset.get("class_names"),
        "image_shape": dataset.get("image_shape"),
        "pixel_max": dataset.get("pixel_max"),
        "preprocess": preprocessing.style,
        "background": preprocessing.background,
    }
    return {key: json.dumps(value) for key, value in meta.items()}


__all__ = ["register"]
