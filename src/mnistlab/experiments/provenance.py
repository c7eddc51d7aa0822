"""Where a run came from: the command that started it, mnistlab's version and git commit, and
where each configuration value came from (run.json in its run folder).

The report shows them beside the configuration, so that a run can be repeated from its page:
the exact command, the code it ran (the commit when mnistlab runs from a git checkout), and
which values the user chose rather than the preset or the defaults.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import mnistlab
from mnistlab import __version__

#: how long `git rev-parse` may take before the commit is left unrecorded
GIT_SECONDS = 5.0


def command_line(argv: list[str] | None = None) -> str:
    """The command as the user typed it, shell-quoted: ``mnistlab train --epochs 3``.

    argv: sys.argv by default. Its first word is the program's path; the console script shows
    as its name (mnistlab), ``python -m mnistlab`` (argv[0] its __main__.py) as that.
    """
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return ""
    program = Path(argv[0])
    if program.name == "__main__.py" and program.parent.name == "mnistlab":
        words = ["python", "-m", "mnistlab"]
    else:
        words = [program.name or argv[0]]
    return shlex.join(words + argv[1:])


def git_commit(folder: str | Path | None = None) -> str | None:
    """The commit checked out where mnistlab's source lies (`folder`: the package's own), with
    " (modified)" when tracked files differ from it; None when that is not a git work tree, git
    is missing or slow. Never raises: a run does not depend on it."""
    folder = Path(mnistlab.__file__).resolve().parent if folder is None else Path(folder)
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None or len(commit) != 40:
        return None
    changed = _git(folder, "status", "--porcelain", "--untracked-files=no", "--", ".")
    return commit + (" (modified)" if changed else "")


def _git(folder: Path, *arguments: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *arguments],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=GIT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def run_record(config: dict, argv: list[str] | None = None) -> dict:
    """A new run's run.json: its command line (and argv), mnistlab's version, the git commit
    (None outside a checkout), when it started, and each configuration key's source ("user",
    "preset" or "default": `config.sources`, absent for a configuration not resolved by
    `experiments.config.resolve_config`)."""
    argv = list(sys.argv if argv is None else argv)
    sources = getattr(config, "sources", None)
    return {
        "command": command_line(argv),
        "argv": argv,
        "mnistlab": __version__,
        "git_commit": git_commit(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sources": dict(sources) if sources is not None else None,
    }


def resumed_record(record: dict | None, argv: list[str] | None = None) -> dict:
    """run.json after a resume: the original record (its sources are the first command's),
    with this command, version and commit added to ``resumed``."""
    record = dict(record or {})
    record.setdefault("resumed", []).append(
        {
            "command": command_line(argv),
            "mnistlab": __version__,
            "git_commit": git_commit(),
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
    )
    return record


__all__ = ["command_line", "git_commit", "resumed_record", "run_record"]
