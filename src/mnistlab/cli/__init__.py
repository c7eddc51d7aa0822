"""The `mnistlab` command line: `mnistlab data ...` and friends.

Every user-facing failure is one line on stderr and a non-zero exit code (2 for usage and input
errors); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import sys
import traceback

from mnistlab import __version__
from mnistlab.cli import (
    bench_commands,
    data_commands,
    export_commands,
    predict_commands,
    report_commands,
    runs_commands,
    serve_commands,
    sweep_commands,
    train_commands,
)
from mnistlab.errors import MnistlabError
from mnistlab.train.interrupts import terminate_as_interrupt


class Parser(argparse.ArgumentParser):
    """argparse with mnistlab's error rules: a bad option or value is one line (the command
    and the problem, no 17-line usage block) and exit code 2; a long option must be written
    out in full (an abbreviation such as --ep for --epochs could silently pick an option)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mnistlab",
        description="A fast, from-scratch NumPy laboratory for MNIST-family classification.",
    )
    parser.add_argument("--version", action="version", version=f"mnistlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    data_commands.register(commands)
    train_commands.register(commands)
    predict_commands.register(commands)
    export_commands.register(commands)
    serve_commands.register(commands)
    report_commands.register(commands)
    runs_commands.register(commands)
    sweep_commands.register(commands)
    bench_commands.register(commands)
    return parser


#: errno values that mean a path given on the command line cannot be used: exit code 2
PATH_ERRORS = {
    errno.ENOENT,
    errno.EEXIST,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENAMETOOLONG,
}


def describe_os_error(exc: OSError) -> str:
    """`path: reason` for an OSError, e.g. 'runs/x: File exists'."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    if exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {reason}"
    return f"{exc.filename}: {reason}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with terminate_as_interrupt():  # SIGTERM (a scheduler, docker stop) as Ctrl-C
            return int(args.handler(args) or 0)
    except MnistlabError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"mnistlab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mnistlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:
        # the file system refused a path the user gave (or a full disk): one line, no traceback
        if args.debug:
            traceback.print_exc()
        print(f"mnistlab: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2 if exc.errno in PATH_ERRORS else 1
    except Exception as exc:  # noqa: BLE001 - last line of defence for the user
        if args.debug:
            raise
        print(
            f"mnistlab: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the "
            "traceback)",
            file=sys.stderr,
        )
        return 1
