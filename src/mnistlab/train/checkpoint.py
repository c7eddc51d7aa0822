"""One-file checkpoints and weight files: .npz read with allow_pickle=False, written atomically.

JSON metadata travels inside the same .npz as a uint8 array named `__meta__`, so a checkpoint is
one file that is either complete under its final name or absent.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from mnistlab._io import atomic_path, check_npz_claims
from mnistlab.errors import DataError

FORMAT_VERSION = 1
META_KEY = "__meta__"


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict | None = None):
    """Write arrays (and optional JSON metadata) to `path` atomically."""
    payload = dict(arrays)
    if meta is not None:
        payload[META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **payload)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        if exc.filename is not None:
            raise
        # a full disk raises from write() with no file name: name the file being written
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None


def load_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict | None]:
    """Read arrays and metadata written by save_npz; DataError naming the file if corrupt."""
    arrays = _read(path, None)
    meta = _decode_meta(path, arrays.pop(META_KEY)) if META_KEY in arrays else None
    return arrays, meta


def read_npz_meta(path: str | os.PathLike) -> dict | None:
    """Only the metadata of a file save_npz wrote (None if it has none), no other array read:
    what a resumed run needs to know of its checkpoint."""
    arrays = _read(path, [META_KEY])
    return _decode_meta(path, arrays[META_KEY]) if META_KEY in arrays else None


def _read(path, keys: list[str] | None) -> dict[str, np.ndarray]:
    """The arrays named `keys` (all if None) that the archive has; DataError if unreadable."""
    path = Path(path)
    # np.load takes what is not a zip archive for a pickle, and would advise unpickling it
    if path.is_file() and not zipfile.is_zipfile(path):
        raise DataError(f"{path}: corrupt or unreadable weights file (not a .npz zip archive)")
    if path.is_file():
        check_npz_claims(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            wanted = archive.files if keys is None else [k for k in keys if k in archive.files]
            return {key: archive[key] for key in wanted}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise DataError(f"{path}: corrupt or unreadable weights file ({exc})") from None


def _decode_meta(path, raw: np.ndarray) -> dict:
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: corrupt metadata ({exc})") from None
    if not isinstance(meta, dict):
        raise DataError(
            f"{path}: corrupt metadata (a JSON {type(meta).__name__} where an object belongs)"
        )
    return meta
