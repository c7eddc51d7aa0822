"""`mnistlab train` and `mnistlab evaluate` (`predict` is cli/predict_commands.py).

`train` has one option per run-configuration key, built from the key's ParamSpec (its type,
metavar and help: mnistlab.experiments.config.CONFIG_PARAMS); the configuration checks the values.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mnistlab._io import check_destination, read_json
from mnistlab.cli.data_commands import add_source_options
from mnistlab.errors import DataError, UsageError
from mnistlab.experiments.config import (
    CONFIG_PARAMS,
    DEFAULTS,
    NETWORK_MODELS,
    check_applicable,
    models_using,
    resolve_config,
)
from mnistlab.experiments.presets import PRESETS
from mnistlab.experiments.run_folder import jsonable
from mnistlab.experiments.runs import (
    check_resumable,
    default_run_dir,
    prepare_data,
    resume_point,
    test_metrics,
    train_run,
)
from mnistlab.experiments.study import tomllib
from mnistlab.metrics import report_from_confusion
from mnistlab.models import load_model
from mnistlab.models.params import ParamSpec, option_flag
from mnistlab.reports.run_report import build_report

#: options whose few values argparse lists in the usage line and checks itself
LISTED_CHOICES = ("dtype",)


def _hidden(text: str) -> list[int]:
    """Layer sizes like 256,128: every comma-separated part an integer (an empty part is a
    typo, not a layer to skip)."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 256,128, got {text!r}") from None


def _validation(text: str) -> int | float:
    """An integer is a count of images, anything else a fraction (1.0 is then refused by the
    configuration's check rather than read as one image)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or a fraction, got {text!r}") from None


def _number_or(words: tuple[str, ...]):
    """An argparse type: a number, or one of `words` (smoothing's "auto")."""

    def parse(text: str) -> float | str:
        if text in words:
            return text
        try:
            return float(text)
        except ValueError:
            expected = " or ".join(repr(word) for word in words)
            raise argparse.ArgumentTypeError(
                f"expected a number or {expected}, got {text!r}"
            ) from None

    return parse


def register(commands) -> None:
    _register_train(commands)
    _register_evaluate(commands)


def _register_train(commands) -> None:
    p = commands.add_parser("train", help="train a model and write a run folder")
    _add_configuration_options(p)
    p.add_argument("--out", metavar="RUN_DIR", help="default runs/<timestamp>-<model>-<dataset>")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run, or a finished one with more --epochs",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch rows")
    p.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    add_source_options(p)
    p.set_defaults(handler=cmd_train)


def _add_configuration_options(parser: argparse.ArgumentParser) -> None:
    """One option per configuration key, in the order of DEFAULTS (--data-dir comes with the
    data-source options); the keys only the classical models use go in a group of their own,
    their help led by the model's name."""
    classical = parser.add_argument_group("classical models")
    for key, spec in CONFIG_PARAMS.items():
        if key == "data_dir":
            continue
        users = models_using(key)
        if set(users) & set(NETWORK_MODELS):
            parser.add_argument(option_flag(key), **_option(spec, spec.help_text()))
        else:
            help_text = f"{' and '.join(users)}: {spec.help_text()}"
            classical.add_argument(option_flag(key), **_option(spec, help_text))
        if key == "preset":
            parser.add_argument(
                "--config",
                metavar="FILE",
                help="start from a configuration file (a run's config.json, or TOML); options "
                "given here override it",
            )


def _option(spec: ParamSpec, help_text: str) -> dict:
    """add_argument's keywords for a configuration key: the value given, None when not."""
    if spec.kind == "bool":
        return {"action": "store_true", "default": None, "help": help_text or None}
    option = {"help": help_text or None, "metavar": spec.metavar}
    if spec.key in LISTED_CHOICES:
        option["choices"] = list(spec.choices)
    elif spec.kind == "int":
        option["type"] = int
    elif spec.kind == "float":
        option["type"] = _number_or(spec.also) if spec.also else float
    elif spec.kind == "sizes":
        option["type"] = _hidden
    elif spec.kind == "split":
        option["type"] = _validation
    return option


def _register_evaluate(commands) -> None:
    p = commands.add_parser("evaluate", help="recompute a run's test metrics")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--dataset", help="evaluate on another dataset (default: the run's)")
    p.add_argument("--json", action="store_true")
    add_source_options(p)
    p.set_defaults(handler=cmd_evaluate)


def cmd_train(args) -> int:
    if args.list_presets:
        for name, preset in PRESETS.items():
            print(f"{name:<20} {preset['about']}")
        return 0
    echo = (lambda *a, **k: None) if args.quiet else print
    resume = bool(args.resume)
    if resume:
        run_dir, config = _resumed_run(args)
        echo(f"resuming {run_dir}")
    else:
        run_dir, config = _new_run(args)
    progress = None if not args.quiet else False
    # the data first (after the cheap checks): a dataset that cannot be read leaves no run
    # folder and no store record
    if resume:
        check_resumable(config, run_dir)
    data = prepare_data(config, offline=args.offline)
    metrics = train_run(
        config,
        run_dir,
        resume=resume,
        offline=args.offline,
        progress=progress,
        echo=echo,
        report=build_report,
        data=data,
    )
    print(_summary(metrics, run_dir))
    return 0


def _new_run(args) -> tuple[Path, dict]:
    """The run folder and configuration of a new run: defaults, preset, --config, options."""
    # every configuration key is an option of the same name (None when not given)
    options = {key: getattr(args, key, None) for key in DEFAULTS}
    given = {k: v for k, v in options.items() if v is not None}
    if args.config:
        options = {**read_config_file(args.config), **given}
    config = resolve_config(options)
    check_applicable(given, config["model"])
    run_dir = Path(args.out) if args.out else default_run_dir(config)
    check_destination(run_dir, "--out", folder=True)
    if (run_dir / "config.json").exists():
        raise UsageError(
            f"--out {run_dir} already holds a run; choose another folder or "
            f"continue it with --resume {run_dir}"
        )
    return run_dir, config


def _resumed_run(args) -> tuple[Path, dict]:
    """The run folder and configuration of --resume RUN_DIR, with --epochs and --data-dir."""
    run_dir = Path(args.resume)
    _refuse_changes_on_resume(args, run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise UsageError(f"--resume {run_dir}: no config.json there (not a run folder)")
    config = read_json(config_path)
    for key in ("epochs", "data_dir"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    config = resolve_config(config)  # validates, and gives a key the file lacks its default
    done, finished = resume_point(run_dir)
    if finished and finished.get("stop_reason") and args.epochs is None:
        # (a run that finished all its epochs is refused by train_run, --epochs or not)
        raise UsageError(
            f"nothing to resume: {run_dir} finished at epoch {done} "
            f"({finished['stop_reason']}); give --epochs N (N > {done}) to train it further"
        )
    return run_dir, config


def _refuse_changes_on_resume(args, run_dir: Path) -> None:
    """A resumed run keeps its configuration (its checkpoint and optimizer state are for it);
    only how far to train and where its data lies may change."""
    refused = [
        option_flag(key)
        for key in [*DEFAULTS, "config", "out"]
        if key not in ("epochs", "data_dir") and getattr(args, key, None) is not None
    ]
    if refused:
        raise UsageError(
            f"--resume {run_dir} continues the run as it was configured; "
            f"{', '.join(refused)} cannot change it (only --epochs and --data-dir can)"
        )


def _summary(metrics: dict, run_dir: Path) -> str:
    """The line train prints at the end: test accuracy, time, where the run and report are."""
    run = metrics.get("epochs_run")
    epochs = f"{run} epoch{'s' if run != 1 else ''} in " if run else ""
    report = run_dir / "report.html"
    return (
        f"test accuracy {metrics['test_accuracy']:.4f} ({metrics['test_errors']} errors out of "
        f"{metrics['n_test']}), trained {epochs}{metrics['train_seconds']:.1f}s; "
        f"run folder {run_dir}" + (f"; report {report}" if report.exists() else "")
    )


def read_config_file(path: str) -> dict:
    """A configuration from JSON (a run's config.json) or TOML (top level, or a study's [base])."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"--config {path}: cannot read it ({exc})") from None
    if file.suffix == ".toml":
        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DataError(f"--config {path}: not valid TOML ({exc})") from None
        config = config.get("base", config)
    else:
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"--config {path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise DataError(
            f"--config {path}: expected a table of settings, got {type(config).__name__}"
        )
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise UsageError(f"--config {path}: unknown keys {unknown}")
    return config


def _load_run(run_dir: Path):
    model = load_model(run_dir)
    config = read_json(run_dir / "config.json")
    dataset = read_json(run_dir / "dataset.json")
    return model, config, dataset


def cmd_evaluate(args) -> int:
    run_dir = Path(args.run_dir)
    model, config, _ = _load_run(run_dir)
    if args.dataset:
        config = {**config, "dataset": args.dataset, "validation": None}
    if args.data_dir:
        config["data_dir"] = args.data_dir
    data = prepare_data(config, offline=args.offline)
    if data.x_test.shape[1] != model.n_features_in_:
        raise DataError(
            f"{config['dataset']}: images have {data.x_test.shape[1]} pixels, the "
            f"model expects {model.n_features_in_}"
        )
    out = {
        "dataset": data.dataset.name,
        **test_metrics(model, data.x_test, data.y_test, data.dataset.n_classes),
    }
    if args.json:
        print(json.dumps(jsonable(out), indent=2, allow_nan=False))
    else:
        print(
            f"{data.dataset.name}: test accuracy {out['test_accuracy']:.4f}, loss "
            f"{out['test_loss']:.4f}, {out['test_errors']} errors out of {out['n_test']}, "
            f"top-2 accuracy {out['test_top2_accuracy']:.4f}"
        )
        print()
        print(report_from_confusion(out["confusion_matrix"], data.dataset.class_names))
    return 0


__all__ = ["register"]
