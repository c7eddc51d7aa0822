"""`make docs` in a test: the Sphinx sources build with warnings as errors.

The sources are copied into tmp_path first, because autosummary writes its generated pages
next to them (docs/api/generated/); the build, its doctrees and those pages stay in tmp_path.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="Sphinx is not installed (the test and docs extras)")
pytest.importorskip("myst_parser", reason="myst-parser is not installed (the test and docs extras)")

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    source = tmp_path / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_build", "generated"))
    html = tmp_path / "html"
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",  # every warning is an error, all of them reported
        "-q",
        "-b",
        "html",
        "-d",
        str(tmp_path / "doctrees"),
        str(source),
        str(html),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stderr}{result.stdout}"

    # the API reference has a page for every package it lists, with that package's members
    for page, expected in (
        ("mnistlab.models.mlp", "hidden_layer_sizes"),
        ("mnistlab.data", "load_dataset"),
        ("mnistlab.metrics", "confusion_matrix"),
        ("mnistlab.nn", "mnistlab.nn"),
        ("mnistlab.optim", "mnistlab.optim"),
        ("mnistlab.train", "mnistlab.train"),
        ("mnistlab.experiments", "mnistlab.experiments"),
        ("mnistlab.reports", "mnistlab.reports"),
        ("mnistlab.backend", "mnistlab.backend"),
        ("mnistlab.reports.model_report", "build_model_report"),
        ("mnistlab.train.history", "to_pandas"),
    ):
        path = html / "api" / "generated" / f"{page}.html"
        assert path.is_file(), f"no API page {path.name}"
        assert expected in path.read_text(encoding="utf-8"), f"{path.name} lacks {expected}"
    assert (html / "index.html").is_file()
