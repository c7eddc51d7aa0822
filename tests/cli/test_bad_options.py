"""Bad option values and typos: one line naming the option, exit code 2, no usage block."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mnistlab.cli import main


@pytest.mark.parametrize(
    "args, says",
    [
        (["train", "--batch-size", "x"], "argument --batch-size: invalid int value: 'x'"),
        (["train", "--epochs", "1e20"], "argument --epochs: invalid int value: '1e20'"),
        (["train", "--hidden", "10,,20"], "argument --hidden: expected sizes like 256,128"),
        (["data", "show", "digits", "--per-class", "x", "--out", "x.png"], "--per-class"),
        (["runs", "lst"], "invalid choice: 'lst'"),
        (["train", "--ep", "2"], "unrecognized arguments: --ep 2"),
        (["sweep"], "the following arguments are required"),
    ],
)
def test_a_bad_option_is_one_line(capsys, args, says):
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err
    assert "usage:" not in err


@pytest.mark.parametrize(
    "args, says",
    [
        (
            ["--validation", "1.0"],
            "--validation must be a count (10000), a fraction (0.1) or 0 (none), got 1.0",
        ),
        (["--epochs", "10000000"], "--epochs must be in [1, 1000000], got 10000000"),
    ],
)
def test_values_that_would_train_something_else_than_asked_are_refused(
    tmp_path, capsys, args, says
):
    code = main(["train", "--dataset", "digits", "--quiet", "--out", str(tmp_path / "r"), *args])
    assert code == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_network_too_large_for_memory_is_one_line_within_bounded_memory(tmp_path):
    """Under a 4 GiB address-space limit, 100,000,000 hidden units are refused with one line
    naming the size (it was an internal MemoryError)."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
        "from mnistlab.cli import main\n"
        f"sys.exit(main(['train', '--dataset', 'digits', '--hidden', '100000000', '--quiet',"
        f" '--out', {str(tmp_path / 'r')!r}]))\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1
    assert "hidden_layer_sizes=(100000000,)" in done.stderr and "does not fit" in done.stderr
