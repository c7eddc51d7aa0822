"""Files: atomic writing (a file appears complete under its final name, or not at all), output
paths checked before any work, and .npz archives checked before NumPy allocates their arrays."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy

from mnistlab.errors import DataError, UsageError


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
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, OSError) and exc.filename is None:
            # a full disk raises from write() or fsync() without a file name: name the target
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
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


def check_npz_claims(path: str | os.PathLike) -> None:
    """Refuse (DataError) a .npz archive whose arrays claim more bytes than the archive holds.

    Every .npy member's header declares a shape and a dtype, and np.load allocates that much
    before reading: a damaged or hostile header could ask for terabytes. Each claim is checked
    against the member's uncompressed size recorded in the zip directory first. The shape's
    product is a Python integer, so it never wraps. Members that are not .npy are left to
    np.load.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = npy.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = npy.read_array_header_1_0(member)
                    else:
                        shape, _, dtype = npy.read_array_header_2_0(member)
                    header_bytes = member.tell()
                if dtype.hasobject:
                    continue  # np.load refuses object arrays itself (allow_pickle=False)
                claimed = math.prod(shape) * np.dtype(dtype).itemsize
                if claimed > info.file_size - header_bytes:
                    raise DataError(
                        f"{path}: array {info.filename[:-4]!r} claims shape {shape} of {dtype} "
                        f"({claimed:,} bytes), more than its {info.file_size:,} stored bytes"
                    )
    except DataError:
        raise
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise DataError(f"{path}: not a valid .npz file ({exc})") from None


#: what JSON calls the types json.loads returns, for messages
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def read_json(path: Path) -> dict:
    """The JSON object in `path` (config.json, dataset.json, metrics.json, model.json,
    sweep.json); DataError naming the file for one that is missing, unreadable, not UTF-8 text,
    not JSON, or JSON of another shape than an object."""
    path = Path(path)
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: missing (is {path.parent} a finished run folder?)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not a JSON file (byte {exc.object[exc.start]:#04x} at offset {exc.start} "
            f"is not UTF-8 text)"
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise DataError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        kind = "null" if value is None else _JSON_KINDS.get(type(value), type(value).__name__)
        raise DataError(f"{path}: expected a JSON object {{...}}, got a JSON {kind}")
    return value
