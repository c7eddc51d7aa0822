"""The downloader against a real HTTP server on 127.0.0.1 serving generated IDX files."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from conftest import make_images
from mnistlab.cli import main
from mnistlab.data import REGISTRY, load_dataset
from mnistlab.data.idx import write_idx
from mnistlab.data.registry import IDX_ROLES, DatasetSpec, FileSpec
from mnistlab.data.sources import fetch
from mnistlab.errors import DataError, DatasetNotFoundError, DownloadError

NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


class Server:
    """Serves `routes[path] = (behaviour, bytes)`; behaviour is 'ok', '404', 'cut', 'endless'
    (no Content-Length, then 16 MiB unless the client stops reading) or 'huge' (announces 1 GB)."""

    def __init__(self):
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.requests: list[str] = []
        routes, requests = self.routes, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                requests.append(self.path)
                behaviour, body = routes.get(self.path, ("404", b""))
                if behaviour == "404":
                    self.send_error(404, "Not Found")
                    return
                if behaviour == "endless":  # no length, then chunks until the client stops
                    self.send_response(200)
                    self.end_headers()
                    try:
                        for _ in range(256):  # bounded: 16 MiB at most
                            self.wfile.write(b"\0" * 65536)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    self.close_connection = True
                    return
                if behaviour == "huge":  # announces 1 GB, sends a little
                    self.send_response(200)
                    self.send_header("Content-Length", str(10**9))
                    self.end_headers()
                    self.wfile.write(body)
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if behaviour == "cut":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def payloads(tmp_path):
    """The four generated .gz files as bytes, and a spec whose checksums match them."""
    folder = tmp_path / "source"
    folder.mkdir()
    x_train, y_train = make_images(40, 6, seed=11)
    x_test, y_test = make_images(10, 6, seed=12)
    for role, array in zip(IDX_ROLES, (x_train, y_train, x_test, y_test), strict=True):
        write_idx(folder / NAMES[role], array)
    files = {}
    blobs = {}
    for role in IDX_ROLES:
        blob = (folder / NAMES[role]).read_bytes()
        blobs[role] = blob
        files[role] = FileSpec(NAMES[role], hashlib.sha256(gzip.decompress(blob)).hexdigest())
    return blobs, files, (x_train, y_train, x_test, y_test)


def make_spec(files, mirrors):
    return DatasetSpec(
        name="tiny",
        title="tiny test set",
        class_names=("a", "b", "c"),
        image_shape=(6, 6),
        n_train=40,
        n_test=10,
        files=files,
        mirrors=tuple(mirrors),
    )


def test_success_then_load(tmp_path, payloads):
    blobs, files, arrays = payloads
    with Server() as server:
        for role in IDX_ROLES:
            server.routes[f"/m1/{NAMES[role]}"] = ("ok", blobs[role])
        spec = make_spec(files, [server.base + "/m1/"])
        folder = fetch(spec, tmp_path / "data", progress=False)
    assert folder == tmp_path / "data" / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == sorted(NAMES.values())


def test_first_mirror_404_then_second(tmp_path, payloads, monkeypatch):
    blobs, files, arrays = payloads
    with Server() as server:
        for role in IDX_ROLES:
            server.routes[f"/good/{NAMES[role]}"] = ("ok", blobs[role])
        spec = make_spec(files, [server.base + "/missing/", server.base + "/good/"])
        monkeypatch.setitem(REGISTRY, "tiny", spec)
        dataset = load_dataset("tiny", data_dir=tmp_path / "data", progress=False)
        assert server.requests.count(f"/missing/{NAMES['train_images']}") == 1
    np.testing.assert_array_equal(dataset.x_train, arrays[0])
    assert dataset.class_names == ("a", "b", "c")
    # Now cached: a second load needs no server and no network.
    again = load_dataset("tiny", data_dir=tmp_path / "data", offline=True)
    np.testing.assert_array_equal(again.y_test, arrays[3])


def test_default_download_goes_to_the_user_cache(tmp_path, payloads, monkeypatch, isolated_env):
    blobs, files, _ = payloads
    with Server() as server:
        for role in IDX_ROLES:
            server.routes[f"/m/{NAMES[role]}"] = ("ok", blobs[role])
        spec = make_spec(files, [server.base + "/m/"])
        monkeypatch.setitem(REGISTRY, "tiny", spec)
        load_dataset("tiny", progress=False)
    assert (isolated_env / ".cache" / "mnistlab" / "tiny" / NAMES["test_labels"]).is_file()


def test_checksum_mismatch_says_expected_and_actual(tmp_path, payloads):
    blobs, files, _ = payloads
    bad = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    with Server() as server:
        for role in IDX_ROLES:
            server.routes[f"/m/{NAMES[role]}"] = (
                "ok",
                bad if role == "train_images" else blobs[role],
            )
        spec = make_spec(files, [server.base + "/m/"])
        with pytest.raises(DownloadError) as info:
            fetch(spec, tmp_path / "data", progress=False)
    message = str(info.value)
    expected = files["train_images"].sha256
    actual = hashlib.sha256(gzip.decompress(bad)).hexdigest()
    assert f"expected sha256 {expected}, got {actual}" in message
    assert f"{server.base}/m/{NAMES['train_images']}" in message
    leftovers = list((tmp_path / "data" / "tiny").iterdir())
    assert leftovers == []  # nothing half-written, and train_images came first


def test_every_mirror_failing_lists_what_each_answered(tmp_path, payloads):
    _, files, _ = payloads
    with Server() as server:
        spec = make_spec(files, [server.base + "/a/", server.base + "/b/"])
        with pytest.raises(DownloadError) as info:
            fetch(spec, tmp_path / "data", progress=False)
    message = str(info.value)
    assert f"{server.base}/a/{NAMES['train_images']}: HTTP 404" in message
    assert f"{server.base}/b/{NAMES['train_images']}: HTTP 404" in message


def test_connection_refused_is_reported(tmp_path, payloads):
    _, files, _ = payloads
    with Server() as server:
        dead = server.base
    spec = make_spec(files, [dead + "/x/"])
    with pytest.raises(DownloadError, match="refused"):
        fetch(spec, tmp_path / "data", progress=False, timeout=5)


def test_cut_mid_file_leaves_nothing_and_a_rerun_resumes(tmp_path, payloads):
    blobs, files, arrays = payloads
    with Server() as server:
        for role in IDX_ROLES:
            behaviour = "cut" if role == "test_images" else "ok"
            server.routes[f"/m/{NAMES[role]}"] = (behaviour, blobs[role])
        spec = make_spec(files, [server.base + "/m/"])
        with pytest.raises(DownloadError, match="connection cut after"):
            fetch(spec, tmp_path / "data", progress=False)
        folder = tmp_path / "data" / "tiny"
        # The two files finished before the cut are kept (verified); no partial file remains.
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [NAMES["train_images"], NAMES["train_labels"]]
        )
        server.routes[f"/m/{NAMES['test_images']}"] = ("ok", blobs["test_images"])
        server.requests.clear()
        fetch(spec, tmp_path / "data", progress=False)
        # The rerun fetched only what was missing.
        assert sorted(server.requests) == sorted(
            [f"/m/{NAMES['test_images']}", f"/m/{NAMES['test_labels']}"]
        )
    assert sorted(p.name for p in folder.iterdir()) == sorted(NAMES.values())


def test_offline_fails_fast_and_says_where_it_looked(tmp_path, monkeypatch, payloads):
    _, files, _ = payloads
    spec = make_spec(files, ["http://127.0.0.1:9/never/"])
    monkeypatch.setitem(REGISTRY, "tiny", spec)
    monkeypatch.setenv("MNISTLAB_OFFLINE", "1")
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("tiny", data_dir=tmp_path / "d")
    assert "dataset 'tiny' is not present (offline" in str(info.value)
    assert str(tmp_path / "d" / "tiny") in str(info.value)


def test_corrupted_cached_file_fails_its_checksum(tmp_path, payloads, monkeypatch):
    blobs, files, _ = payloads
    folder = tmp_path / "d" / "tiny"
    folder.mkdir(parents=True)
    for role in IDX_ROLES:
        (folder / NAMES[role]).write_bytes(blobs[role])
    labels = np.asarray(make_images(40, 6, seed=11)[1]).copy()
    labels[0] = (labels[0] + 1) % 3
    write_idx(folder / NAMES["train_labels"], labels)
    monkeypatch.setitem(REGISTRY, "tiny", make_spec(files, []))
    with pytest.raises(
        Exception, match=r"checksum mismatch for tiny: expected sha256 [0-9a-f]{64}, got"
    ):
        load_dataset("tiny", data_dir=tmp_path / "d", offline=True)


def test_cli_fetch(tmp_path, payloads, monkeypatch, capsys):
    blobs, files, _ = payloads
    with Server() as server:
        for role in IDX_ROLES:
            server.routes[f"/m/{NAMES[role]}"] = ("ok", blobs[role])
        monkeypatch.setitem(REGISTRY, "tiny", make_spec(files, [server.base + "/m/"]))
        assert main(["data", "fetch", "tiny", "--data-dir", str(tmp_path), "--quiet"]) == 0
    assert "tiny: verified in" in capsys.readouterr().out
    assert Path(tmp_path / "tiny" / NAMES["train_labels"]).is_file()


def _small(files, max_bytes):
    return {role: dataclasses.replace(spec, max_bytes=max_bytes) for role, spec in files.items()}


def test_an_endless_body_stops_at_the_files_size_limit(tmp_path, payloads):
    blobs, files, _ = payloads
    with Server() as server:
        for role in IDX_ROLES:
            server.routes[f"/m/{NAMES[role]}"] = ("endless", blobs[role])
        spec = make_spec(_small(files, 200_000), [server.base + "/m/"])
        with pytest.raises(DownloadError, match="more than the 200,000 bytes expected; stopped"):
            fetch(spec, tmp_path / "data", progress=False)
    assert not list((tmp_path / "data" / "tiny").iterdir())  # nothing half-written kept


def test_an_announced_size_past_the_limit_is_refused_before_reading(tmp_path, payloads):
    blobs, files, _ = payloads
    with Server() as server:
        for role in IDX_ROLES:
            server.routes[f"/m/{NAMES[role]}"] = ("huge", blobs[role])
        spec = make_spec(_small(files, 1 << 20), [server.base + "/m/"])
        with pytest.raises(DownloadError, match="announces 1,000,000,000 bytes"):
            fetch(spec, tmp_path / "data", progress=False)


def test_stale_part_files_of_killed_downloads_are_removed(tmp_path, payloads):
    blobs, files, _ = payloads
    folder = tmp_path / "data" / "tiny"
    folder.mkdir(parents=True)
    stale = folder / f".{NAMES['train_images']}.abc123.part"
    fresh = folder / f".{NAMES['train_labels']}.def456.part"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"in progress")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    with Server() as server:
        for role in IDX_ROLES:
            server.routes[f"/m/{NAMES[role]}"] = ("ok", blobs[role])
        fetch(make_spec(files, [server.base + "/m/"]), tmp_path / "data", progress=False)
    assert not stale.exists() and fresh.exists()


def _gz_only_spec(folder: Path) -> DatasetSpec:
    """A named dataset whose checksums are those of its .gz files only, as MNIST's are."""
    files = {
        role: FileSpec(
            NAMES[role], None, hashlib.sha256((folder / NAMES[role]).read_bytes()).hexdigest()
        )
        for role in IDX_ROLES
    }
    return make_spec(files, [])


def test_found_files_are_checked_against_the_published_gz_hash_once(
    tmp_path, payloads, monkeypatch
):
    blobs, _, arrays = payloads
    folder = tmp_path / "data" / "tiny"
    folder.mkdir(parents=True)
    for role in IDX_ROLES:
        (folder / NAMES[role]).write_bytes(blobs[role])
    monkeypatch.setitem(REGISTRY, "tiny", _gz_only_spec(folder))
    dataset = load_dataset("tiny", data_dir=tmp_path / "data", offline=True)
    np.testing.assert_array_equal(dataset.x_train, arrays[0])

    # the verdict is remembered by size and mtime: the second load hashes nothing
    import mnistlab.data.sources as sources

    def no_hashing(path):
        raise AssertionError(f"{path} hashed again")

    monkeypatch.setattr(sources, "sha256_of_file", no_hashing)
    load_dataset("tiny", data_dir=tmp_path / "data", offline=True)


def test_a_found_file_that_is_not_the_published_one_is_refused(tmp_path, payloads, monkeypatch):
    """Random images under the right names (the files of another dataset) never train as it."""
    blobs, _, _ = payloads
    folder = tmp_path / "data" / "tiny"
    folder.mkdir(parents=True)
    for role in IDX_ROLES:
        (folder / NAMES[role]).write_bytes(blobs[role])
    monkeypatch.setitem(REGISTRY, "tiny", _gz_only_spec(folder))
    impostor = make_images(40, 6, seed=99)[0]
    write_idx(folder / NAMES["train_images"], impostor)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: checksum mismatch for tiny"):
        load_dataset("tiny", data_dir=tmp_path / "data", offline=True)


def test_an_uncompressed_file_of_the_wrong_shape_is_not_the_named_dataset(
    tmp_path, payloads, monkeypatch
):
    blobs, _, _ = payloads
    folder = tmp_path / "data" / "tiny"
    folder.mkdir(parents=True)
    for role in IDX_ROLES:
        (folder / NAMES[role].removesuffix(".gz")).write_bytes(gzip.decompress(blobs[role]))
    monkeypatch.setitem(REGISTRY, "tiny", _gz_only_spec(tmp_path / "source"))
    write_idx(folder / "train-images-idx3-ubyte", make_images(40, 8, seed=5)[0])  # 8x8, not 6x6
    write_idx(folder / "t10k-images-idx3-ubyte", make_images(10, 8, seed=6)[0])
    with pytest.raises(DataError, match=r"not the tiny dataset: its train images are 40 x 8 x 8"):
        load_dataset("tiny", data_dir=tmp_path / "data", offline=True)
