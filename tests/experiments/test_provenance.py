"""run.json: the command, version, commit and each value's source recorded at train time; the
default preset's validation split, and --validation 0 turning it off."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mnistlab import __version__
from mnistlab.cli import main
from mnistlab.experiments.provenance import command_line, git_commit, run_record
from mnistlab.experiments.run_folder import read_history


def _train(out, *options):
    argv = ["train", "--dataset", "digits", "--hidden", "16", "--epochs", "2", "--quiet"]
    return main([*argv, "--out", str(out), *options])


def test_a_run_records_its_command_version_commit_and_sources(tmp_path, monkeypatch):
    typed = ["/somewhere/bin/mnistlab", "train", "--dataset", "digits", "--hidden", "16"]
    monkeypatch.setattr(sys, "argv", typed)
    assert _train(tmp_path / "run") == 0
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["command"] == "mnistlab train --dataset digits --hidden 16"
    assert record["argv"] == typed and record["mnistlab"] == __version__
    assert record["git_commit"] == git_commit()
    sources = record["sources"]
    assert sources["hidden"] == "user" and sources["epochs"] == "user"
    assert sources["batch_size"] == "preset" and sources["seed"] == "default"
    # the default preset holds out a validation split: the history has validation curves
    history = read_history(tmp_path / "run")
    assert "val_loss" in history[0] and "val_accuracy" in history[0]


def test_validation_0_trains_on_every_row(tmp_path):
    assert _train(tmp_path / "run", "--validation", "0") == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["validation"] == 0
    assert "val_loss" not in read_history(tmp_path / "run")[0]
    # the resume keeps it off (0, not None: the preset's split is not taken again)
    assert main(["train", "--resume", str(tmp_path / "run"), "--epochs", "3", "--quiet"]) == 0
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert len(record["resumed"]) == 1 and "sources" in record
    assert "val_loss" not in read_history(tmp_path / "run")[-1]


def test_an_old_run_without_a_split_is_not_resumed_onto_another(tmp_path, capsys):
    assert _train(tmp_path / "run", "--validation", "0", "--epochs", "1") == 0
    config_path = tmp_path / "run" / "config.json"
    config = json.loads(config_path.read_text())
    config["validation"] = None  # as written before the preset held a split out
    config_path.write_text(json.dumps(config))
    assert main(["train", "--resume", str(tmp_path / "run"), "--epochs", "2", "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "trained on every training image, but its preset 'fashion' now holds out" in error
    assert 'validation=0.0833333; set "validation": 0 in' in error


def test_command_line_as_typed():
    assert command_line(["/usr/bin/mnistlab", "train", "--out", "my runs/a"]) == (
        "mnistlab train --out 'my runs/a'"
    )
    main_py = "/x/site-packages/mnistlab/__main__.py"
    assert command_line([main_py, "report", "r"]) == "python -m mnistlab report r"


def test_git_commit_never_fails(tmp_path, monkeypatch):
    assert git_commit(tmp_path) is None  # not a work tree
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    assert git_commit() is None
    record = run_record({"model": "knn"}, ["mnistlab", "train"])
    assert record["sources"] is None and record["git_commit"] is None


def test_git_commit_of_a_checkout(tmp_path):
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    env = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "a.py"], check=True)
    subprocess.run(["git", *env, "-C", str(tmp_path), "commit", "-qm", "a"], check=True)
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == f"{head} (modified)"
