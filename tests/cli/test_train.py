"""`mnistlab train|evaluate|predict` end to end, including kill-and-resume in real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from mnistlab.cli import main
from mnistlab.models import load_model


def run(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "mnistlab", *args], capture_output=True, text=True, **kwargs
    )


SMALL = ["--dataset", "digits", "--hidden", "32", "--epochs", "3", "--batch-size", "32", "--quiet"]


def test_train_writes_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                *SMALL[:-1],
                "--validation",
                "200",
                "--seed",
                "1",
                "--out",
                str(out),
                "--schedule",
                "constant",
                "--dropout",
                "0",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "Total params: 2,410" in printed  # 64*32+32 + 32*10+10
    assert "epoch   3/3" in printed and "val_acc" in printed
    assert "test accuracy" in printed
    for name in (
        "model.json",
        "weights.npz",
        "history.csv",
        "config.json",
        "metrics.json",
        "dataset.json",
        "checkpoint.npz",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "test_accuracy",
        "test_loss",
        "test_errors",
        "n_test",
        "train_seconds",
        "epochs_run",
        "dataset",
        "seed",
    ):
        assert key in metrics
    assert metrics["n_test"] == 359 and metrics["epochs_run"] == 3 and metrics["seed"] == 1
    assert metrics["test_errors"] == round((1 - metrics["test_accuracy"]) * 359)
    config = json.loads((out / "config.json").read_text())
    assert config["hidden"] == [32] and config["validation"] == 200 and config["seed"] == 1
    # the options and config.json keep their keys; the estimator takes scikit-learn's names
    params = json.loads((out / "model.json").read_text())["params"]
    assert params["hidden_layer_sizes"] == [32] and params["random_state"] == 1
    assert "hidden" not in params and "seed" not in params
    assert (out / "history.csv").read_text().count("\n") == 4
    # no temporary file is left; the run's claim on its folder stays (run_folder.LOCK_NAME)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".run.lock"]


def test_evaluate_recomputes_the_metrics(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", *SMALL, "--out", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["test_accuracy"] == metrics["test_accuracy"]
    assert again["test_errors"] == metrics["test_errors"]


def test_predict_prints_class_name_and_probability(tmp_path, capsys):
    out = tmp_path / "run"
    main(
        [
            "train",
            "--dataset",
            "digits",
            "--hidden",
            "64",
            "--epochs",
            "30",
            "--batch-size",
            "16",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    from mnistlab.data import load_dataset

    digits = load_dataset("digits")
    # A test digit drawn large, dark on white, off-center: predict must undo all of that.
    index = int(np.flatnonzero(digits.y_test == 7)[0])
    image = 255 - (digits.x_test[index].astype(float) * 255 / 16).astype(np.uint8)
    big = Image.fromarray(image).resize((64, 64), Image.Resampling.NEAREST)
    canvas = Image.new("L", (120, 100), 255)
    canvas.paste(big, (40, 10))
    canvas.convert("RGB").save(tmp_path / "seven.png")
    capsys.readouterr()
    assert main(["predict", str(out), str(tmp_path / "seven.png"), "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{tmp_path / 'seven.png'}: 7 '7' ")
    probability = float(line.split()[3].rstrip(","))
    assert 0 < probability <= 1


def test_predict_rejects_a_non_image(tmp_path):
    out = tmp_path / "run"
    main(["train", *SMALL, "--out", str(out)])
    (tmp_path / "notes.txt").write_text("hello")
    result = run("predict", str(out), str(tmp_path / "notes.txt"))
    assert result.returncode == 2 and "notes.txt: not a readable image" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lr", "-0.1"], "--lr must be a positive number, got -0.1"),
        (["--lr", "0"], "--lr must be a positive number, got 0.0"),
        (["--activation", "swish"], "unknown activation 'swish'; valid: relu, leaky_relu"),
        (["--optimizer", "lion"], "--optimizer must be one of sgd, momentum, nesterov"),
        (["--hidden", "128,0"], "--hidden must be positive layer sizes like 256,128, got [128, 0]"),
        (["--dropout", "1.0"], "--dropout must be in [0, 1), got 1.0"),
        (["--dropout", "-0.2"], "--dropout must be in [0, 1), got -0.2"),
        (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
        (["--init", "orthogonal"], "unknown initializer 'orthogonal'"),
        (["--schedule", "warp"], "--schedule must be one of constant, linear"),
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--dataset", "nope"], "unknown dataset 'nope'"),
    ],
)
def test_bad_options_get_one_line_and_exit_2(tmp_path, args, message):
    result = run(
        "train", "--dataset", "digits", "--epochs", "1", "--out", str(tmp_path / "r"), *args
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert "Traceback" not in result.stderr


def test_out_folder_that_holds_a_run_is_not_overwritten(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    result = run("train", *SMALL, "--out", str(out))
    assert result.returncode == 2 and "already holds a run" in result.stderr


def _npz_dataset(path, n=12000, side=28, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    x = rng.integers(0, 80, size=(n, side, side), dtype=np.uint8)
    x[np.arange(n), y, y] = 255  # a learnable pixel per class
    np.savez(path, x_train=x, y_train=y, x_test=x[:2000], y_test=y[:2000])


TRAIN_ARGS = [
    "--hidden",
    "256,128",
    "--epochs",
    "6",
    "--batch-size",
    "32",
    "--dropout",
    "0.2",
    "--schedule",
    "cosine",
    "--quiet",
]


def _wait_for(path, process, timeout=60.0):
    deadline = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_killed_run_resumes_to_identical_weights(tmp_path, how):
    data = tmp_path / "data.npz"
    _npz_dataset(data)
    reference = tmp_path / "reference"
    finished = run("train", "--dataset", str(data), *TRAIN_ARGS, "--out", str(reference))
    assert finished.returncode == 0, finished.stderr

    out = tmp_path / "interrupted"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mnistlab",
            "train",
            "--dataset",
            str(data),
            *TRAIN_ARGS,
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(out / "checkpoint.npz", process)
    time.sleep(0.3)  # into the next epoch
    process.send_signal(signal.SIGKILL if how == "kill" else signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    if how == "ctrl-c":
        assert process.returncode == 130, stderr
        assert "interrupted in epoch" in stderr
        assert "continue with: mnistlab train --resume" in stderr
        assert (out / "history.csv").is_file()
    else:
        assert process.returncode == -signal.SIGKILL
    assert not (out / "metrics.json").exists()  # it really stopped early

    resumed = run("train", "--resume", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    with np.load(reference / "weights.npz") as a, np.load(out / "weights.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    history_a = (reference / "history.csv").read_text().splitlines()
    history_b = (out / "history.csv").read_text().splitlines()
    drop_seconds = [",".join(line.split(",")[:-1]) for line in history_a]
    assert drop_seconds == [",".join(line.split(",")[:-1]) for line in history_b]


def test_resume_needs_a_run_folder(tmp_path):
    result = run("train", "--resume", str(tmp_path))
    assert result.returncode == 2 and "no config.json there" in result.stderr


def test_resume_with_more_epochs_continues_and_records_them(tmp_path, capsys):
    out = tmp_path / "run"
    db = tmp_path / "runs.db"
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "5", "--quiet"]) == 0
    assert "trained 5 epochs" in capsys.readouterr().out
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 5
    # the run folder and the store say what it was trained for, not the first request
    assert json.loads((out / "config.json").read_text())["epochs"] == 5
    from mnistlab.experiments.store import RunStore

    with RunStore(db) as store:
        (row,) = store.list()
        assert store.get(row["id"])["config"]["epochs"] == 5


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 3-epoch run that the tests using it only try to resume (and must not change)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("epochs", [None, "3", "2"])
def test_resume_that_would_train_nothing_is_refused(finished_run, capsys, epochs):
    out = finished_run
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    extra = [] if epochs is None else ["--epochs", epochs]
    assert main(["train", "--resume", str(out), *extra, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"nothing to resume: {out} has already trained 3 epochs" in err
    assert "--epochs N with N > 3" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing rewritten


def test_resume_finishes_a_run_stopped_before_its_metrics(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    first = json.loads((out / "metrics.json").read_text())
    (out / "metrics.json").unlink()  # as if killed after the last epoch's checkpoint
    (out / "report.html").unlink()
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["epochs_run"] == 3 and again["test_accuracy"] == first["test_accuracy"]
    assert (out / "report.html").is_file()


def test_resume_of_an_early_stopped_run_needs_epochs(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--epochs", "60", "--early-stopping", "1", "--validation", "0.2", "--lr", "0.05"]
    small = ["--dataset", "digits", "--hidden", "32", "--batch-size", "32", "--quiet"]
    assert main(["train", *small, *args, "--out", str(out)]) == 0
    done = json.loads((out / "metrics.json").read_text())["epochs_run"]
    assert done < 60
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"finished at epoch {done} (early stopping:" in err
    assert f"give --epochs N (N > {done})" in err
    assert main(["train", "--resume", str(out), "--epochs", str(done + 1), "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == done + 1


def test_resume_refuses_options_that_would_change_the_run(finished_run, tmp_path, capsys):
    out = finished_run
    capsys.readouterr()
    code = main(
        ["train", "--resume", str(out), "--epochs", "5", "--lr", "0.5", "--batchnorm",
         "--out", str(tmp_path / "other")]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "--batchnorm, --lr, --out cannot change it" in err
    assert not (tmp_path / "other").exists()
    assert json.loads((out / "config.json").read_text())["epochs"] == 3


def test_list_presets(capsys):
    assert main(["train", "--list-presets"]) == 0
    out = capsys.readouterr().out
    assert "seed000" in out and "fashion" in out


def test_diverging_run_exits_1_with_one_line(tmp_path):
    result = run(
        "train",
        "--dataset",
        "digits",
        "--hidden",
        "16",
        "--activation",
        "tanh",
        "--optimizer",
        "sgd",
        "--lr",
        "1e36",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        str(tmp_path / "r"),
    )
    assert result.returncode == 1
    assert "training stopped: loss became" in result.stderr
    assert (tmp_path / "r" / "weights.npz").is_file()


def test_env_is_clean():
    assert "MNISTLAB_DATA" not in os.environ


def _formats(tmp_path):
    """The same small dataset as an IDX folder, CSV files, a PNG tree and an .npz file."""
    from conftest import make_images, write_idx_folder

    folders = {}
    arrays = write_idx_folder(tmp_path / "idx", n_train=60, n_test=15, side=6)
    folders["idx"] = tmp_path / "idx"
    x_train, y_train, x_test, y_test = arrays
    np.savez(tmp_path / "d.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    folders["npz"] = tmp_path / "d.npz"
    csv = tmp_path / "csv"
    csv.mkdir()
    for name, values in (
        ("trainData", x_train.reshape(60, -1)),
        ("trainLabels", y_train[:, None]),
        ("testData", x_test.reshape(15, -1)),
        ("testLabels", y_test[:, None]),
    ):
        np.savetxt(csv / f"{name}.csv", values, fmt="%d", delimiter=",")
    folders["csv"] = csv
    for split, images, labels in (("Train", x_train, y_train), ("Test", x_test, y_test)):
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            folder = tmp_path / "png" / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i}.png")
    folders["png"] = tmp_path / "png"
    _ = make_images
    return folders


@pytest.mark.parametrize("model", ["mlp", "softmax", "logistic-ova", "gaussian", "knn"])
def test_every_model_trains_and_evaluates_on_every_format(tmp_path, capsys, model):
    for fmt, path in _formats(tmp_path).items():
        out = tmp_path / f"run-{model}-{fmt}"
        extra = {
            "mlp": ["--hidden", "16", "--epochs", "40", "--batch-size", "10", "--lr", "0.01"],
            "softmax": ["--epochs", "40", "--batch-size", "10", "--lr", "0.05"],
            "knn": ["--k", "3"],
        }.get(model, [])
        assert (
            main(
                [
                    "train",
                    "--dataset",
                    str(path),
                    "--model",
                    model,
                    "--quiet",
                    "--out",
                    str(out),
                    *extra,
                ]
            )
            == 0
        ), fmt
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["n_test"] == 15 and metrics["test_accuracy"] > 0.5, (fmt, metrics)
        capsys.readouterr()
        assert main(["evaluate", str(out), "--json"]) == 0
        again = json.loads(capsys.readouterr().out)
        assert again["test_accuracy"] == metrics["test_accuracy"]


def test_metrics_json_has_the_classification_report(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--dataset",
                "digits",
                "--model",
                "knn",
                "--k",
                "3",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.sum() == metrics["n_test"] == 359
    assert np.trace(matrix) == metrics["n_test"] - metrics["test_errors"]
    assert len(metrics["per_class"]["f1"]) == 10
    assert set(metrics["macro_avg"]) == {"precision", "recall", "f1", "support"}
    assert metrics["test_top2_accuracy"] >= metrics["test_accuracy"]
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "precision" in printed and "weighted avg" in printed and "top-2 accuracy" in printed


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["--model", "knn", "--hidden", "64", "--lr", "0.1"],
            "--hidden, --lr do not apply to the knn model (its options: --k, --weights, "
            "--metric, --block-size)",
        ),
        (["--preset", "knn", "--epochs", "3"], "--epochs does not apply to the knn model"),
        (["--model", "mlp", "--k", "3"], "--k does not apply to the mlp model (its options: --h"),
        (["--k", "3"], "--k does not apply to the mlp model"),
        (["--model", "gaussian", "--batch-size", "8"], "--batch-size does not apply to the gau"),
    ],
)
def test_options_the_model_does_not_use_are_refused(tmp_path, capsys, arguments, message):
    out = tmp_path / "run"
    code = main(["train", "--dataset", "digits", "--quiet", "--out", str(out), *arguments])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mnistlab: error: {message}") and err.count("\n") == 1
    assert not out.exists()


def test_a_configuration_file_may_hold_keys_another_model_uses(tmp_path, capsys):
    """--config names a whole configuration; switching its model on the command line drops the
    keys the new model does not use instead of refusing them."""
    config = tmp_path / "mlp.toml"
    config.write_text('model = "mlp"\nhidden = [16]\nepochs = 2\n')
    out = tmp_path / "run"
    args = ["train", "--dataset", "digits", "--config", str(config), "--model", "knn"]
    assert main([*args, "--k", "3", "--quiet", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"] == "knn" and saved["k"] == 3 and "hidden" not in saved
    assert load_model(out).n_neighbors == 3  # --k is the estimator's n_neighbors


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--dataset", "{tmp}/nothing-here"], "nothing-here"),
        (["--dataset", "digits", "--validation", "5000"], "5000"),
    ],
)
def test_data_that_cannot_be_used_leaves_no_run_behind(tmp_path, capsys, arguments, message):
    """The dataset is read (and split) before the run folder and the store record exist."""
    out = tmp_path / "run"
    arguments = [a.format(tmp=tmp_path) for a in arguments]
    assert main(["train", *arguments, "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mnistlab: error: ") and message in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "runs.db").exists()
