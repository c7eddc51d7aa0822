"""report.html for every model: every section present, every image a decodable PNG; the
comparison of several runs; and a real headless Chromium opening the file with no network."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import pytest
from PIL import Image

from mnistlab.cli import main
from mnistlab.reports.run_report import SECTIONS

MODELS = {
    "mlp": ["--hidden", "32", "--epochs", "3"],
    "softmax": ["--epochs", "3"],
    "logistic-ova": ["--max-iter", "30"],
    "gaussian": [],
    "knn": ["--k", "3"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    folders = {}
    for model, extra in MODELS.items():
        folders[model] = root / model
        assert (
            main(
                [
                    "train",
                    "--dataset",
                    "digits",
                    "--model",
                    model,
                    "--quiet",
                    "--out",
                    str(folders[model]),
                    *extra,
                ]
            )
            == 0
        )
    return folders


def images_of(page: str) -> list[bytes]:
    return [
        base64.b64decode(data)
        for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    ]


@pytest.mark.parametrize("model", list(MODELS))
def test_every_section_and_every_image(runs, model):
    page = (runs[model] / "report.html").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in page, section
    assert "http://" not in page and "https://" not in page  # nothing from the network
    pictures = images_of(page)
    assert len(pictures) >= 7
    for blob in pictures:
        with Image.open(io.BytesIO(blob)) as picture:
            picture.verify()
            assert picture.format == "PNG"
    assert "weighted avg" in page and "errors out of 359" in page


def test_mlp_report_shows_weights_now_and_at_initialization(runs):
    assert (runs["mlp"] / "init_weights.npz").is_file()
    page = (runs["mlp"] / "report.html").read_text(encoding="utf-8")
    assert 'alt="weight distributions"' in page and 'alt="learning curves"' in page


def test_report_command_regenerates_and_compares(runs, tmp_path, capsys):
    (runs["knn"] / "report.html").unlink()
    assert main(["report", str(runs["knn"])]) == 0
    assert (runs["knn"] / "report.html").is_file()
    out = tmp_path / "compare.html"
    assert (
        main(
            ["report", str(runs["mlp"]), str(runs["softmax"]), str(runs["knn"]), "--out", str(out)]
        )
        == 0
    )
    page = out.read_text(encoding="utf-8")
    assert "model" in page and "test_accuracy" in page and len(images_of(page)) >= 1
    capsys.readouterr()


def test_report_of_a_missing_folder_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "config.json: missing" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["knn", "--layer", "1"], "--layer picks a layer of a network; {knn} holds a knn model"),
        (["mlp", "knn", "--layer", "1"], "--layer applies to one run's report, not to a compar"),
        (["mlp", "knn", "--figures", "{tmp}/figs"], "--figures applies to one run's report"),
        (["mlp", "--format", "svg"], "--format svg is the file format for --figures DIR; give"),
    ],
)
def test_report_options_that_would_be_ignored_are_refused(
    runs, tmp_path, capsys, arguments, message
):
    def fill(text):
        return text.format(tmp=tmp_path, knn=runs["knn"])

    before = (runs["knn"] / "report.html").stat().st_mtime_ns
    args = [str(runs[a]) if a in runs else fill(a) for a in arguments]
    assert main(["report", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mnistlab: error: {fill(message)}") and err.count("\n") == 1
    assert (runs["knn"] / "report.html").stat().st_mtime_ns == before
    assert not (tmp_path / "figs").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("epoch,loss,accuracy\n1,0.5,abc\n", "line 2 is not a row of numbers"),
        ("epoch,loss,accuracy\n1,0.5,0.8\n2,0.4\n", "line 3 does not have one value per"),
        ("epoch,loss,accuracy\n1,0.5,0.8,9\n", "line 2 does not have one value per"),
        ("epoch,loss,accuracy\n1,,0.8\n", "line 2 has no value for loss"),
        ("epoch,loss,accuracy,val_loss\n1,0.5,0.8,\n", "line 2 has no value for val_loss"),
        ("epoch,loss\n1,0.5\n", "line 2 has no value for accuracy"),
    ],
)
def test_a_damaged_history_is_one_line(runs, tmp_path, capsys, text, message):
    run = tmp_path / "run"
    shutil.copytree(runs["mlp"], run)
    (run / "history.csv").write_text(text)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err == f"mnistlab: error: {run / 'history.csv'}: {message}" + err.split(message)[1]
    assert err.count("\n") == 1


def test_blank_optional_history_values_are_kept_out(runs, tmp_path):
    from mnistlab.experiments.run_folder import read_history

    run = tmp_path / "run"
    run.mkdir()
    (run / "history.csv").write_text(
        "epoch,loss,accuracy,learning_rate\n1,0.5,0.8,\n2,0.4,0.9,0.1\n"
    )
    assert read_history(run) == [
        {"epoch": 1, "loss": 0.5, "accuracy": 0.8},
        {"epoch": 2, "loss": 0.4, "accuracy": 0.9, "learning_rate": 0.1},
    ]


def test_train_run_builds_a_report_only_through_its_hook(tmp_path):
    from mnistlab.experiments.config import resolve_config
    from mnistlab.experiments.runs import train_run
    from mnistlab.reports.run_report import build_report

    config = resolve_config({"dataset": "digits", "model": "gaussian"})
    lines = []
    train_run(config, tmp_path / "plain", echo=lines.append, store=False)
    assert not (tmp_path / "plain" / "report.html").exists()
    assert not any(line.startswith("report: ") for line in lines)
    train_run(config, tmp_path / "run", echo=lines.append, report=build_report, store=False)
    page = tmp_path / "run" / "report.html"
    assert page.is_file() and f"report: {page}" in lines
    assert 'id="activations"' in page.read_text(encoding="utf-8")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_headless_chromium_opens_the_report_offline(runs, tmp_path):
    report = runs["mlp"] / "report.html"
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    for section in SECTIONS:
        assert f'id="{section}"' in dom, section
    total = int(re.search(r'data-images-total="(\d+)"', dom).group(1))
    decoded = int(re.search(r'data-images-decoded="(\d+)"', dom).group(1))
    assert total >= 7 and decoded == total


def test_a_two_unit_bottleneck_is_mapped_directly_and_figures_can_be_svg(tmp_path, capsys):
    out = tmp_path / "bottleneck"
    assert (
        main(
            [
                "train",
                "--dataset",
                "digits",
                "--hidden",
                "32,2",
                "--epochs",
                "3",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "report",
                str(out),
                "--layer",
                "-2",
                "--figures",
                str(tmp_path / "figs"),
                "--format",
                "svg",
            ]
        )
        == 0
    )
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "2 wide): its two units directly" in page
    svgs = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert "confusion-matrix.svg" in svgs and "activation-map.svg" in svgs
    assert (tmp_path / "figs" / "learning-curves.svg").read_text().lstrip().startswith("<?xml")
    capsys.readouterr()
    assert main(["report", str(out), "--layer", "99"]) == 2
    assert "--layer must be a layer index from 0 to " in capsys.readouterr().err
