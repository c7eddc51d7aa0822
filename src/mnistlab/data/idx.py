"""Reading and writing IDX files (the MNIST format), gzip-compressed or raw.

An IDX file is a 4-byte magic number (two zero bytes, an element-type code, the number of
dimensions), one big-endian uint32 per dimension, then the elements in C order, big-endian.
Reading allocates the result once and decompresses straight into it: no intermediate bytes
object, no second pass, and the SHA-256 of the decompressed content can be computed on the way.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from mnistlab.errors import DataError

#: element-type code -> big-endian dtype, as in the IDX specification.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
#: deflate's best ratio is about 1032:1, so a gzip stream never holds more than this many bytes
#: per compressed byte: a header that claims more is refused before anything is allocated
_MAX_GZIP_RATIO = 1100


def is_gzip(path: str | os.PathLike) -> bool:
    """Whether the file starts with the gzip magic bytes."""
    with open(path, "rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def _open(path: Path):
    """Open raw or gzip by content; a `.gz` name whose bytes are not gzip is an error."""
    try:
        compressed = is_gzip(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if compressed:
        return gzip.open(path, "rb")
    if path.suffix == ".gz":
        raise DataError(f"{path}: not a gzip file (the name ends in .gz but the bytes do not)")
    return open(path, "rb")


def _read_exact(handle, view: memoryview) -> int:
    """Fill `view` from `handle`; return how many bytes were read (less only at end of file)."""
    filled = 0
    total = len(view)
    while filled < total:
        n = handle.readinto(view[filled : filled + _CHUNK])
        if not n:
            break
        filled += n
    return filled


def _claimed_count(path: Path, shape: tuple[int, ...], dtype: np.dtype, header_bytes: int) -> int:
    """The element count the header claims, refused (DataError) when the file cannot hold it.

    Checked before the array is allocated, so that a damaged or hostile header cannot ask for
    terabytes: a raw file must hold at least the claimed payload (the read checks the exact
    length); a gzip file can hold at most _MAX_GZIP_RATIO bytes per stored byte. The count is a
    Python integer, so a product of dimensions never wraps.
    """
    count = math.prod(shape)
    claimed = count * dtype.itemsize
    stored = path.stat().st_size
    if not is_gzip(path):
        if claimed > stored - header_bytes:
            raise DataError(
                f"{path}: payload shorter than the header says "
                f"({stored - header_bytes} of {claimed} bytes for shape {shape})"
            )
    elif claimed > stored * _MAX_GZIP_RATIO:
        dims = " x ".join(str(d) for d in shape)
        raise DataError(
            f"{path}: the IDX header claims {dims} elements ({claimed:,} bytes), more than "
            f"a {stored:,}-byte gzip file can hold"
        )
    return count


def read_idx(path: str | os.PathLike, *, hasher: hashlib._Hash | None = None) -> np.ndarray:
    """Read one IDX file into a writable native-endian array.

    path: the file, `.gz` (decompressed on the fly) or raw.
    hasher: if given, updated with the decompressed bytes, header included.
    Returns an array of the file's shape and element type (uint8 for MNIST images and labels).
    Raises DataError naming the file for a bad gzip stream, a wrong magic number or element type,
    or a payload shorter or longer than the header says.
    """
    path = Path(path)
    try:
        with _open(path) as handle:
            magic = handle.read(4)
            if len(magic) < 4:
                raise DataError(f"{path}: file too short for an IDX header ({len(magic)} bytes)")
            if magic[0] != 0 or magic[1] != 0:
                raise DataError(
                    f"{path}: wrong IDX magic number 0x{magic.hex()} "
                    "(expected two zero bytes, a type code and the number of dimensions)"
                )
            code, ndim = magic[2], magic[3]
            if code not in IDX_DTYPES:
                known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
                raise DataError(f"{path}: unknown IDX element type 0x{code:02X} (known: {known})")
            if ndim == 0:
                raise DataError(f"{path}: IDX header declares 0 dimensions")
            dims_bytes = handle.read(4 * ndim)
            if len(dims_bytes) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header (expected {ndim} dimensions)")
            shape = struct.unpack(f">{ndim}I", dims_bytes)
            dtype = IDX_DTYPES[code]
            count = _claimed_count(path, shape, dtype, header_bytes=4 + 4 * ndim)
            data = np.empty(count, dtype=dtype)
            view = memoryview(data).cast("B")
            got = _read_exact(handle, view)
            if got < len(view):
                raise DataError(
                    f"{path}: payload shorter than the header says "
                    f"({got} of {len(view)} bytes for shape {shape})"
                )
            extra = handle.read(1)
            if extra:
                rest = 1 + len(handle.read())
                raise DataError(
                    f"{path}: payload longer than the header says "
                    f"({rest} bytes beyond shape {shape})"
                )
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip data ({exc})") from None
    except EOFError:
        raise DataError(f"{path}: truncated gzip file (the stream ends early)") from None
    if hasher is not None:
        hasher.update(magic)
        hasher.update(dims_bytes)
        hasher.update(view)
    if dtype.itemsize > 1:
        # In place: swap the bytes, then reinterpret as native order (no copy of the payload).
        data = data.byteswap(inplace=True).view(dtype.newbyteorder("="))
    else:
        data = data.view(dtype.newbyteorder("="))
    return data.reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write `array` as an IDX file; gzip it when `compress` (default: the name ends in .gz)."""
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"array dtype {array.dtype} has no IDX element type")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"array must have 1 to 255 dimensions, got {array.ndim}")
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    compress = path.suffix == ".gz" if compress is None else compress
    buffer = io.BytesIO()
    if compress:
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
            gz.write(header + payload)
    else:
        buffer.write(header + payload)
    from mnistlab._io import atomic_open

    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())


def sha256_of_content(path: str | os.PathLike) -> str:
    """SHA-256 of a file's decompressed content (the file itself when it is not gzip)."""
    digest = hashlib.sha256()
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes as stored."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
