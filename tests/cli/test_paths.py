"""Output paths the file system cannot take: refused before any work, in one line, exit code 2."""

import errno
import os
from pathlib import Path

import pytest

from mnistlab._io import check_destination
from mnistlab.cli import describe_os_error, main
from mnistlab.errors import UsageError


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a folder\n")
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--dataset", "digits", "--epochs", "1", "--quiet", "--out", "{file}/run"],
        ["train", "--dataset", "digits", "--epochs", "1", "--quiet", "--out", "{file}"],
        ["sweep", "studies/depth.toml", "--quiet", "--out", "{file}/deeper/sweep"],
        ["bench", "--quick", "--json", "{file}/bench.json"],
        ["bench", "--quick", "--json", "{tmp}"],
        ["data", "show", "digits", "--out", "{file}/digits.png"],
        ["report", "{tmp}", "{tmp}", "--out", "{file}/compare.html"],
        ["report", "{tmp}", "--figures", "{file}"],
    ],
)
def test_unwritable_destination_is_refused_first(tmp_path, a_file, capsys, args, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # studies/ is in the repo root
    args = [a.format(file=a_file, tmp=tmp_path) for a in args]
    # each of these would run for seconds to minutes before writing: the check comes first
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mnistlab: error: --")
    assert str(a_file) in err or str(tmp_path) in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing created


def test_check_destination_accepts_what_can_be_written(tmp_path, a_file):
    assert check_destination(tmp_path / "new" / "deeper" / "x.json", "--json").name == "x.json"
    assert check_destination(a_file, "--json") == a_file  # replaced by the write
    check_destination(tmp_path, "--out", folder=True)
    check_destination(tmp_path / "new" / "run", "--out", folder=True)
    assert not (tmp_path / "new").exists()  # a check creates nothing


def test_check_destination_names_the_problem(tmp_path, a_file):
    with pytest.raises(UsageError, match=r"--out .*notes.txt is a file, not a folder"):
        check_destination(a_file / "run", "--out", folder=True)
    with pytest.raises(UsageError, match=r"--json .*: is a folder, not a file"):
        check_destination(tmp_path, "--json")
    with pytest.raises(UsageError, match=r"--out .*: is a file, not a folder"):
        check_destination(a_file, "--out", folder=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_check_destination_without_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(UsageError, match="no permission to write in"):
            check_destination(locked / "x.json", "--json")
    finally:
        locked.chmod(0o700)


def test_an_os_error_from_a_command_is_one_line(tmp_path, capsys, monkeypatch):
    from mnistlab.cli import bench_commands

    def refuse(args):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x.json"))

    monkeypatch.setattr(bench_commands, "cmd_bench", refuse)
    assert main(["bench"]) == 2
    err = capsys.readouterr().err
    assert err == f"mnistlab: error: {tmp_path / 'x.json'}: Permission denied\n"

    def disk_full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/a")

    monkeypatch.setattr(bench_commands, "cmd_bench", disk_full)
    assert main(["bench"]) == 1  # not a usage error: the same command may work later
    assert capsys.readouterr().err == "mnistlab: error: runs/a: No space left on device\n"


def test_describe_os_error():
    assert describe_os_error(FileExistsError(errno.EEXIST, "File exists", "a")) == (
        "a: File exists"
    )
    assert describe_os_error(OSError(errno.EXDEV, "Invalid cross-device link", "a", None, "b")) == (
        "a -> b: Invalid cross-device link"
    )
    assert describe_os_error(OSError("no details")) == "no details"
