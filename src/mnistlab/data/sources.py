"""Where named datasets are found, and the verified downloader that fills the cache.

Search order for a named dataset's files: `data_dir` (and `data_dir/<name>`),
`$MNISTLAB_DATA/<name>`, `$XDG_CACHE_HOME/mnistlab/<name>` (default `~/.cache/mnistlab/<name>`),
then the system location
`/usr/share/datasets/<name>` where Debian's dataset packages put them.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from mnistlab._io import write_text_atomic
from mnistlab.data.formats import find_idx_file
from mnistlab.data.idx import is_gzip, sha256_of_content, sha256_of_file
from mnistlab.data.registry import IDX_ROLES, DatasetSpec
from mnistlab.errors import DataError, DatasetNotFoundError, DownloadError

_CHUNK = 1 << 16


def system_data_dir() -> Path:
    """Debian's dataset folder (overridable with $MNISTLAB_SYSTEM_DATA, for tests and packagers)."""
    return Path(os.environ.get("MNISTLAB_SYSTEM_DATA", "/usr/share/datasets"))


def cache_dir() -> Path:
    """The user cache: $XDG_CACHE_HOME/mnistlab, default ~/.cache/mnistlab."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mnistlab"


def offline_default() -> bool:
    """Whether $MNISTLAB_OFFLINE asks never to touch the network."""
    return os.environ.get("MNISTLAB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def candidate_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for dataset `name`, in order."""
    dirs: list[Path] = []
    if data_dir is not None:
        dirs += [Path(data_dir) / name, Path(data_dir)]
    if os.environ.get("MNISTLAB_DATA"):
        dirs.append(Path(os.environ["MNISTLAB_DATA"]) / name)
    dirs.append(cache_dir() / name)
    dirs.append(system_data_dir() / name)
    return dirs


def spec_files_in(spec: DatasetSpec, folder: Path) -> dict[str, Path] | None:
    """The dataset's four files in `folder` (raw or .gz), or None if any is missing."""
    found = {}
    for role in IDX_ROLES:
        stem = spec.files[role].filename.removesuffix(".gz")
        path = find_idx_file(folder, stem)
        if path is None:
            return None
        found[role] = path
    return found


def locate(spec: DatasetSpec, data_dir: str | os.PathLike | None = None) -> dict[str, Path] | None:
    """The first location holding all of the dataset's files, or None."""
    for folder in candidate_dirs(spec.name, data_dir):
        files = spec_files_in(spec, folder)
        if files:
            return files
    return None


def download_dir(spec: DatasetSpec, data_dir: str | os.PathLike | None = None) -> Path:
    """Where a download goes: `data_dir/<name>` if a data dir was given, else the user cache."""
    return (Path(data_dir) if data_dir is not None else cache_dir()) / spec.name


def not_found_error(spec: DatasetSpec, data_dir, *, offline: bool) -> DatasetNotFoundError:
    """The DatasetNotFoundError for `spec`: every folder looked in, and whether a download was
    skipped because of `offline`."""
    looked = ", ".join(str(d) for d in candidate_dirs(spec.name, data_dir))
    why = "offline, so not downloaded" if offline else "not downloaded"
    return DatasetNotFoundError(
        f"dataset '{spec.name}' is not present ({why}); looked in: {looked}"
    )


def _describe_failure(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        return str(reason.strerror if isinstance(reason, OSError) and reason.strerror else reason)
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection cut after {len(exc.partial)} bytes"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, TooLarge):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        leave=False,
        disable=not enabled,
        file=sys.stderr,
    )


class TooLarge(ValueError):
    """A download that went past the most bytes its file may have."""


def _download_once(
    url: str, target: Path, *, timeout: float, progress: bool, max_bytes: int
) -> None:
    """Stream `url` into `target`; raise on HTTP errors, a short body, or more than
    `max_bytes` (announced or received: an endless body stops there)."""
    request = urllib.request.Request(url, headers={"User-Agent": "mnistlab"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > max_bytes:
            raise TooLarge(f"announces {total:,} bytes, more than the {max_bytes:,} expected")
        received = 0
        with open(target, "wb") as out, _progress(total, target.name, progress) as bar:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                received += len(chunk)
                if received > max_bytes:
                    raise TooLarge(f"sent more than the {max_bytes:,} bytes expected; stopped")
                out.write(chunk)
                bar.update(len(chunk))
        if total is not None and received < total:
            raise http.client.IncompleteRead(b"\0" * received, total - received)


def verify_file(spec_file, path: Path) -> str | None:
    """None if `path` matches its recorded checksum, else 'expected X, got Y'."""
    if spec_file.sha256:
        try:
            actual = sha256_of_content(path)
        except (OSError, EOFError) as exc:
            return f"not a valid gzip file ({exc})"
        if actual != spec_file.sha256:
            return f"checksum mismatch: expected sha256 {spec_file.sha256}, got {actual}"
        return None
    if spec_file.gz_sha256:
        actual = sha256_of_file(path)
        if actual != spec_file.gz_sha256:
            return f"checksum mismatch: expected sha256 {spec_file.gz_sha256}, got {actual}"
    return None


def fetch(
    spec: DatasetSpec,
    data_dir: str | os.PathLike | None = None,
    *,
    progress: bool | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download the dataset's missing files from its mirrors, verify them, and return the folder.

    Each file is tried on every mirror in order. It is streamed to a temporary file beside its
    final place, checked against its SHA-256, and renamed into place only if it matches, so an
    interrupted or failed download leaves nothing behind; files completed before a failure stay
    (verified), so a rerun carries on from there. Raises DownloadError listing each URL tried and
    what it answered.
    """
    if spec.kind != "idx" or not spec.mirrors:
        raise DownloadError(f"dataset '{spec.name}' has nothing to download")
    target_dir = download_dir(spec, data_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(target_dir)
    if progress is None:
        progress = sys.stderr.isatty()
    for role in IDX_ROLES:
        spec_file = spec.files[role]
        final = target_dir / spec_file.filename
        if final.exists() and verify_file(spec_file, final) is None:
            continue
        failures: list[str] = []
        for mirror in spec.mirrors:
            url = mirror.rstrip("/") + "/" + spec_file.filename
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{spec_file.filename}.", suffix=".part", dir=target_dir
            )
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                _download_once(
                    url, tmp, timeout=timeout, progress=progress, max_bytes=spec_file.max_bytes
                )
                problem = verify_file(spec_file, tmp)
                if problem is None:
                    os.replace(tmp, final)
                    break
                failures.append(f"{url}: {problem}")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                failures.append(f"{url}: {_describe_failure(exc)}")
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        else:
            raise DownloadError(
                f"could not download {spec.name}/{spec_file.filename}; tried " + "; ".join(failures)
            )
    return target_dir


#: a .part file untouched for this long belongs to a download that was killed
STALE_PART_SECONDS = 600


def remove_stale_parts(folder: Path, *, older_than: float = STALE_PART_SECONDS) -> list[Path]:
    """Remove the temporary `.part` files that killed downloads left in `folder` (a download
    in progress writes to its own part file continuously, so it is never this old)."""
    removed = []
    now = time.time()
    for part in folder.glob(".*.part"):
        with contextlib.suppress(FileNotFoundError):
            if now - part.stat().st_mtime > older_than:
                part.unlink()
                removed.append(part)
    return removed


def verify_found(spec: DatasetSpec, files: dict[str, Path]) -> None:
    """Check a named dataset's found files against the checksums of their .gz as published
    (for files whose decompressed hash is not recorded: those are checked while they are read).

    A file is hashed once: the verdict is remembered in the cache folder by its path, size and
    modification time, so a second load of the same files costs a stat() each. A file stored
    uncompressed cannot be compared with the hash of a .gz; its shape is checked instead
    (check_shapes). Raises DataError naming the file, what was expected and what was found.
    """
    verdicts = _Verdicts(cache_dir() / "verified.json")
    for role, path in files.items():
        expected = spec.files[role].gz_sha256
        if spec.files[role].sha256 or not expected or not is_gzip(path):
            continue
        actual = verdicts.get(path) or verdicts.put(path, sha256_of_file(path))
        if actual != expected:
            raise DataError(
                f"{path}: checksum mismatch for {spec.name}: expected sha256 {expected} "
                f"(the published .gz), got {actual}"
            )
    verdicts.save()


class _Verdicts:
    """SHA-256 digests of files, remembered by path, size and modification time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.changed = False
        try:
            self.table = json.loads(path.read_text())
            if not isinstance(self.table, dict):
                self.table = {}
        except (OSError, ValueError):
            self.table = {}

    @staticmethod
    def _key(path: Path) -> tuple[str, list[int]]:
        stat = path.stat()
        return str(path.resolve()), [stat.st_size, stat.st_mtime_ns]

    def get(self, path: Path) -> str | None:
        name, stamp = self._key(path)
        entry = self.table.get(name)
        if isinstance(entry, dict) and entry.get("stamp") == stamp:
            return entry.get("sha256")
        return None

    def put(self, path: Path, digest: str) -> str:
        name, stamp = self._key(path)
        self.table[name] = {"stamp": stamp, "sha256": digest}
        self.changed = True
        return digest

    def save(self) -> None:
        """Written atomically; a cache that cannot be written is only a cache."""
        if self.changed:
            with contextlib.suppress(OSError):
                write_text_atomic(self.path, json.dumps(self.table, indent=1))


def content_hashers(spec: DatasetSpec) -> dict[str, hashlib._Hash]:
    """A SHA-256 hasher for each file whose decompressed checksum is recorded."""
    return {role: hashlib.sha256() for role in IDX_ROLES if spec.files[role].sha256}
