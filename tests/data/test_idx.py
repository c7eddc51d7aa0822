import gzip
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mnistlab.data.idx import read_idx, write_idx
from mnistlab.errors import DataError

IDX_TYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@settings(max_examples=60, deadline=None)
@given(
    array=st.sampled_from(IDX_TYPES).flatmap(
        lambda dtype: hnp.arrays(
            dtype,
            hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
            elements=None if np.dtype(dtype).kind != "f" else {"allow_nan": False},
        )
    ),
    compress=st.booleans(),
)
def test_write_then_read_round_trips_every_element_type(tmp_path_factory, array, compress):
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype.newbyteorder("=")
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_uint8_reads_as_writable_native_array(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x.gz", images)
    back = read_idx(tmp_path / "x.gz")
    back[0, 0, 0] = 9  # writable: no read-only buffer behind it
    assert back.base is not None or back.flags.owndata


def _raw(path, payload: bytes):
    path.write_bytes(payload)
    return path


def test_wrong_magic(tmp_path):
    path = _raw(tmp_path / "x", b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DataError, match=r"x: wrong IDX magic number 0x01020801"):
        read_idx(path)


def test_unknown_element_type(tmp_path):
    path = _raw(tmp_path / "x", b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DataError, match=r"unknown IDX element type 0x07"):
        read_idx(path)


def test_payload_shorter_than_header(tmp_path):
    path = _raw(tmp_path / "x", b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"\x00" * 7)
    with pytest.raises(DataError, match=r"payload shorter than the header says \(7 of 10 bytes"):
        read_idx(path)


def test_payload_longer_than_header(tmp_path):
    path = _raw(tmp_path / "x", b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x00" * 5)
    with pytest.raises(DataError, match=r"payload longer than the header says \(3 bytes beyond"):
        read_idx(path)


def test_not_gzip_despite_name(tmp_path):
    path = _raw(tmp_path / "x.gz", b"this is not gzip")
    with pytest.raises(DataError, match=r"x.gz: not a gzip file"):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    data = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 5000) + bytes(range(256)) * 20)
    path = _raw(tmp_path / "x.gz", data[: len(data) // 2])
    with pytest.raises(DataError, match=r"x.gz: truncated gzip file"):
        read_idx(path)


def test_corrupt_gzip(tmp_path):
    data = bytearray(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 100) + b"\x01" * 100))
    data[-8:-4] = b"\xff" * 4  # the CRC-32 of the content
    path = _raw(tmp_path / "x.gz", bytes(data))
    with pytest.raises(DataError, match=r"x.gz: corrupt gzip data \(CRC check failed"):
        read_idx(path)


def test_hasher_sees_the_decompressed_content(tmp_path):
    import hashlib

    array = np.arange(100, dtype=np.int16)
    write_idx(tmp_path / "x.gz", array)
    hasher = hashlib.sha256()
    read_idx(tmp_path / "x.gz", hasher=hasher)
    assert (
        hasher.hexdigest()
        == hashlib.sha256(gzip.decompress((tmp_path / "x.gz").read_bytes())).hexdigest()
    )


def _gzip(path, content: bytes):
    path.write_bytes(gzip.compress(content))
    return path


def test_gzip_header_claiming_more_than_the_file_can_hold_is_refused_before_allocating(tmp_path):
    # 10^6 x 10^6 bytes (931 GiB) claimed by a file of a few dozen bytes
    header = b"\x00\x00\x08\x02" + struct.pack(">II", 10**6, 10**6)
    path = _gzip(tmp_path / "x.gz", header + b"\x00" * 16)
    with pytest.raises(DataError, match=r"claims 1000000 x 1000000 elements .* can hold"):
        read_idx(path)


def test_dimensions_whose_product_overflows_int64_are_refused(tmp_path):
    # four dimensions of 2^32 - 1: the product is past 2^127, never wrapped to a small number
    header = b"\x00\x00\x08\x04" + struct.pack(">4I", *[2**32 - 1] * 4)
    with pytest.raises(DataError, match="can hold"):
        read_idx(_gzip(tmp_path / "x.gz", header))
    with pytest.raises(DataError, match="payload shorter than the header says"):
        read_idx(_raw(tmp_path / "raw", header))


def test_raw_header_claiming_terabytes_is_refused_from_the_file_size(tmp_path):
    path = _raw(tmp_path / "x", b"\x00\x00\x0d\x01" + struct.pack(">I", 2**32 - 1) + b"\x00" * 8)
    with pytest.raises(DataError, match=r"payload shorter than the header says \(8 of 17179869180"):
        read_idx(path)


def test_a_huge_claim_fails_within_bounded_memory(tmp_path):
    """Under an address-space limit of 2 GiB, a header claiming 9.3 GiB gets the one-line
    error: nothing is reserved before the claim is checked (a regression fails, not swaps)."""
    header = b"\x00\x00\x08\x02" + struct.pack(">II", 100_000, 100_000)
    path = _gzip(tmp_path / "x.gz", header + b"\x00" * 64)
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "from mnistlab.data.idx import read_idx\n"
        "from mnistlab.errors import DataError\n"
        "try:\n"
        f"    read_idx({str(path)!r})\n"
        "except DataError as exc:\n"
        "    print('refused:', exc)\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "can hold" in done.stdout
