"""`mnistlab data ...` end to end: output, JSON, exit codes and one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import needs_fashion, write_idx_folder
from mnistlab import __version__
from mnistlab.cli import main


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "mnistlab", *args], capture_output=True, text=True, env=env
    )


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"mnistlab {__version__}"


def test_info_json_on_a_folder(tmp_path, capsys):
    write_idx_folder(tmp_path / "d")
    assert main(["data", "info", str(tmp_path / "d"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["train"]["n"] == 30 and info["test"]["n"] == 12
    assert info["image_shape"] == [8, 8]
    assert info["classes"] == ["0", "1", "2"]
    assert info["train"]["class_counts"] == [10, 10, 10]
    assert info["test"]["class_counts"] == [4, 4, 4]


def test_info_table_on_digits(capsys):
    assert main(["data", "info", "digits"]) == 0
    out = capsys.readouterr().out
    assert "8x8, uint8" in out and "total" in out and "1438" in out


@needs_fashion
def test_info_fashion_json_reports_60000_and_10000(capsys):
    assert main(["data", "info", "fashion-mnist", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["train"]["n"] == 60000 and info["test"]["n"] == 10000
    assert info["classes"][0] == "T-shirt/top"


def test_list_says_not_present(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MNISTLAB_SYSTEM_DATA", str(tmp_path))
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "mnist" in out and "not present" in out and "digits.csv.gz" in out


def test_list_finds_a_data_dir(tmp_path, capsys):
    write_idx_folder(tmp_path / "kmnist")
    assert main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    assert str(tmp_path / "kmnist") in capsys.readouterr().out


def test_show_writes_a_png_grid_and_a_histogram(tmp_path):
    write_idx_folder(tmp_path / "d")
    out = tmp_path / "grid.png"
    assert main(["data", "show", str(tmp_path / "d"), "--out", str(out), "--per-class", "4"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    hist = tmp_path / "hist.svg"
    assert main(["data", "show", "digits", "--hist", "--out", str(hist)]) == 0
    assert b"<svg" in hist.read_bytes()[:500]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch):
    write_idx_folder(tmp_path / "d")
    (tmp_path / "d" / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    result = run("data", "info", str(tmp_path / "d"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "train-images-idx3-ubyte.gz: not a gzip file" in lines[0]
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = run("--debug", "data", "info", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "nor an existing path" in result.stderr


def test_offline_fails_fast_for_a_missing_dataset(tmp_path):
    import os

    env = dict(
        os.environ,
        MNISTLAB_OFFLINE="1",
        MNISTLAB_SYSTEM_DATA=str(tmp_path),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    result = run("data", "info", "kmnist", env=env)
    assert result.returncode == 2
    assert (
        "dataset 'kmnist' is not present (offline, so not downloaded); looked in:" in result.stderr
    )
    assert str(tmp_path / "cache" / "mnistlab" / "kmnist") in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["data", "show", "digits", "--out", "x.jpg"], "--out must end in .png or .svg"),
        (
            ["data", "show", "digits", "--out", "x.png", "--per-class", "0"],
            "--per-class must be positive",
        ),
        (
            ["data", "show", "digits", "--out", "x.png", "--seed", "-1"],
            "error: --seed must be a non-negative integer, got -1\n",
        ),
        (
            [
                "data",
                "show",
                "digits",
                "--out",
                "x.png",
                "--hist",
                "--split",
                "test",
                "--seed",
                "0",
            ],
            "error: --split, --seed are for the example grid; --hist counts every image of both",
        ),
    ],
)
def test_usage_errors(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_unknown_subcommand_exits_2():
    result = run("data", "frobnicate")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_every_format_through_the_cli(tmp_path, capsys):
    x = np.zeros((4, 3, 3), np.uint8)
    y = np.array([0, 1, 0, 1])
    np.savez(tmp_path / "a.npz", x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    assert main(["data", "info", str(tmp_path / "a.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "npz"
