"""`mnistlab predict`: every model kind, pictures drawn any which way, --json, --top,
--save-input, the preprocessing overrides, and pictures it must refuse by name."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from mnistlab.cli import main
from mnistlab.data import load_dataset
from mnistlab.data.images import read_gray
from mnistlab.experiments.config import resolve_config
from mnistlab.experiments.runs import train_run
from mnistlab.models import load_model
from mnistlab.serve.predictor import Predictor

KINDS = ("mlp", "cnn", "softmax", "logistic-ova", "gaussian", "knn")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run folder per model kind, trained on `digits` (no report: nothing here reads it)."""
    root = tmp_path_factory.mktemp("runs")
    folders = {}
    for kind in KINDS:
        options = {"dataset": "digits", "model": kind}
        if kind == "mlp":
            options.update(hidden=[64], epochs=20, batch_size=32)
        if kind == "cnn":
            options.update(conv=[8, 16], hidden=[32], epochs=20, batch_size=32, dropout=0.0)
        train_run(resolve_config(options), root / kind, store=False, echo=lambda *a, **k: None)
        folders[kind] = root / kind
    return folders


@pytest.fixture(scope="module")
def drawings(tmp_path_factory):
    """The first ten `digits` test images drawn large, dark on white, off-center: (paths,
    labels); one of them a JPEG."""
    folder = tmp_path_factory.mktemp("drawings")
    digits = load_dataset("digits")
    paths = []
    for index in range(10):
        ink = digits.x_test[index].astype(np.float64) / 16
        picture = Image.fromarray((255 - ink * 255).astype(np.uint8))
        picture = picture.resize((48 + 8 * index, 48 + 8 * index), Image.Resampling.NEAREST)
        paper = Image.new("RGB", (220, 180), "white")
        paper.paste(picture, (10 + 9 * index, 5 + 4 * index))
        path = folder / f"digit{index}.{'jpg' if index == 3 else 'png'}"
        paper.save(path)
        paths.append(str(path))
    return paths, digits.y_test[:10].tolist()


def predicted(capsys, *args) -> tuple[int, list[dict], str]:
    code = main(["predict", *args, "--json"])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


@pytest.mark.parametrize("kind", KINDS)
def test_every_model_kind_reads_drawn_digits(runs, drawings, capsys, kind):
    paths, labels = drawings
    code, answers, err = predicted(capsys, str(runs[kind]), *paths)
    assert code == 0 and err == ""
    assert [answer["path"] for answer in answers] == paths
    correct = sum(answer["label"] == label for answer, label in zip(answers, labels, strict=True))
    assert correct >= 8, (kind, [answer["label"] for answer in answers], labels)
    for answer in answers:
        assert set(answer) == {"path", "label", "class", "probabilities"}
        assert len(answer["probabilities"]) == 10
        assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-6)
        assert answer["class"] == str(answer["label"])
        assert answer["label"] == int(np.argmax(answer["probabilities"]))


def test_json_holds_the_models_probabilities_in_full_precision(runs, drawings, capsys):
    paths, _ = drawings
    _, answers, _ = predicted(capsys, str(runs["mlp"]), paths[0])
    predictor = Predictor(runs["mlp"])
    image = predictor.prepare(paths[0])
    expected = load_model(runs["mlp"]).predict_proba(image.reshape(1, -1))[0]
    assert answers[0]["probabilities"] == [float(p) for p in expected]  # every digit kept
    assert answers[0] == predictor.predict(paths[0]).to_json()


def test_top_k_lists_the_likeliest_classes_first(runs, drawings, capsys):
    paths, _ = drawings
    _, answers, _ = predicted(capsys, str(runs["gaussian"]), paths[0], "--top", "3")
    top = answers[0]["top"]
    assert [guess["label"] for guess in top][0] == answers[0]["label"] and len(top) == 3
    probabilities = [guess["probability"] for guess in top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(answers[0]["probabilities"][g["label"]] == g["probability"] for g in top)
    assert main(["predict", str(runs["mlp"]), paths[0], "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{paths[0]}: ") and line.count(",") == 1  # label 'class' 0.123, ...


def test_save_input_writes_what_the_model_saw(runs, drawings, capsys, tmp_path):
    paths, _ = drawings
    out = tmp_path / "seen"
    assert main(["predict", str(runs["knn"]), *paths[:2], "--save-input", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["digit0.png", "digit1.png"]
    saved = read_gray(out / "digit0.png")
    assert saved.shape == (8, 8)
    assert np.abs(saved - Predictor(runs["knn"]).prepare(paths[0])).max() <= 0.5 / 255 + 1e-6


def test_bad_pictures_get_one_line_each_and_the_rest_are_still_predicted(
    runs, drawings, capsys, tmp_path
):
    paths, _ = drawings
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.png").write_bytes(b"")
    good = Image.new("RGB", (40, 40), "white")
    good.save(tmp_path / "half.png")
    (tmp_path / "half.png").write_bytes((tmp_path / "half.png").read_bytes()[:50])
    bad = [str(tmp_path / name) for name in ("notes.txt", "empty.png", "half.png", "gone.png")]
    code, answers, err = predicted(capsys, str(runs["mlp"]), bad[0], paths[0], *bad[1:], paths[1])
    assert code == 2
    assert [answer["path"] for answer in answers] == paths[:2]
    lines = err.splitlines()
    assert len(lines) == 4
    assert (
        lines[0] == f"mnistlab: error: {bad[0]}: not a readable image (no image format recognized)"
    )
    assert lines[1] == f"mnistlab: error: {bad[1]}: empty (0 bytes), not an image"
    assert lines[2].startswith(f"mnistlab: error: {bad[2]}: truncated or corrupt image")
    assert lines[3] == f"mnistlab: error: {bad[3]}: no such file"


def test_preprocess_override_and_its_errors(runs, drawings, capsys):
    paths, _ = drawings
    code, _, err = predicted(capsys, str(runs["mlp"]), paths[0], "--preprocess", "none")
    assert code == 2 and "--preprocess none needs the model's 8x8" in err
    code, answers, _ = predicted(capsys, str(runs["mlp"]), paths[0], "--preprocess", "resize")
    assert code == 0 and len(answers) == 1
    assert main(["predict", str(runs["mlp"]), paths[0], "--top", "0"]) == 2
    assert "--top must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", str(runs["mlp"]), paths[0], "--invert", "sometimes"])


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path, drawings, capsys):
    paths, _ = drawings
    assert main(["predict", str(tmp_path), paths[0]]) == 2
    assert "model.json: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "change, says",
    [
        (lambda d: d.pop("image_shape"), "image_shape must be [height, width], got None"),
        (lambda d: d.update(image_shape="8x8"), "image_shape must be [height, width]"),
        (lambda d: d.update(class_names="digits"), "class_names must be a list of names"),
    ],
)
def test_a_damaged_dataset_json_is_one_line(runs, drawings, capsys, tmp_path, change, says):
    run = tmp_path / "run"
    shutil.copytree(runs["softmax"], run)
    dataset = json.loads((run / "dataset.json").read_text())
    change(dataset)
    (run / "dataset.json").write_text(json.dumps(dataset))
    assert main(["predict", str(run), drawings[0][0]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err


def test_fewer_class_names_than_classes_are_completed_with_numbers(
    runs, drawings, capsys, tmp_path
):
    run = tmp_path / "run"
    shutil.copytree(runs["softmax"], run)
    dataset = json.loads((run / "dataset.json").read_text())
    dataset["class_names"] = ["zero"]
    (run / "dataset.json").write_text(json.dumps(dataset))
    code, results, _ = predicted(capsys, str(run), *drawings[0][:3])
    assert code == 0 and len(results) == 3
    assert all(r["class"] == ("zero" if r["label"] == 0 else str(r["label"])) for r in results)
