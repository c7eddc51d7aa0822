"""Atomic file writing: a file appears complete under its final name, or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mnistlab.errors import UsageError


def _default_mode() -> int:
    """The permissions open() would give a new file (0666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _default_mode()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` if the block succeeds.

    The temporary file keeps the final suffix so that writers choosing a format by extension
    (matplotlib, numpy) behave as for the final name. On error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, _MODE)  # mkstemp makes 0600; the final file gets the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; rename it onto `path` on success."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def check_destination(path: str | os.PathLike, what: str, folder: bool = False) -> Path:
    """Check, before any work, that `path` can be written later (as a file, or as a folder with
    `folder`); create nothing. Raises UsageError naming `what` (the option) and the problem: a
    part of the path that is a file, a destination of the wrong kind, a place without write
    permission. What only the write itself can find (a full disk) is left to it."""
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise UsageError(f"{what} {path}: is a file, not a folder")
        if not folder and path.is_dir():
            raise UsageError(f"{what} {path}: is a folder, not a file")
        place = path if folder else path.parent
    else:
        place = path.parent
        while not place.exists() and place != place.parent:
            place = place.parent
        if not place.is_dir():
            raise UsageError(f"{what} {path}: {place} is a file, not a folder")
    if not os.access(place, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: no permission to write in {place}")
    return path
