"""Every examples/*.ipynb runs from top to bottom in a fresh kernel of this interpreter.

The kernel is an ipykernel of `sys.executable` (a kernelspec written under tmp_path, so no
Jupyter installed elsewhere on the machine is used); it starts in tmp_path, and Jupyter's and
IPython's own folders point there too, so a run writes nothing outside tmp_path.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (the test extra)")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (the test extra)")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (the test extra)")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
KERNEL_NAME = "mnistlab-tests"


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A kernelspec for this interpreter under tmp_path, and Jupyter's folders beside it."""
    jupyter = tmp_path / "jupyter"
    spec_dir = jupyter / "data" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({sys.executable})",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter / "data"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(jupyter / "data"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(jupyter / "config"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(jupyter / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    work = tmp_path / "work"
    work.mkdir()
    return work


def execute(path: Path, work: Path):
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name=KERNEL_NAME,
        timeout=120,  # per cell
        resources={"metadata": {"path": str(work)}},
    )
    client.execute()
    return notebook


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {EXAMPLES}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_env):
    # a failing cell raises CellExecutionError, naming the cell and the kernel's traceback
    notebook = execute(path, kernel_env)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            assert not errors, f"{path.name}: cell raised {errors[0]['ename']}"


@pytest.mark.slow
def test_quickstart_falls_back_to_digits(kernel_env, tmp_path, monkeypatch):
    """Without Fashion-MNIST anywhere (no cache, an empty system folder) the quickstart still
    runs, on scikit-learn's digits."""
    monkeypatch.setenv("MNISTLAB_SYSTEM_DATA", str(tmp_path / "no-datasets"))
    monkeypatch.setenv("MNISTLAB_OFFLINE", "1")
    notebook = execute(EXAMPLES / "quickstart.ipynb", kernel_env)
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    assert "Using scikit-learn's 8x8 digits instead." in printed
    assert re.search(r"^digits \(\d+, 8, 8\)", printed, re.MULTILINE), printed
    # both searches ran and were scored on the test split
    assert printed.count("cross-validated accuracy") == 2, printed
    # what a notebook shows: mnistlab's figures inline (a cell's result), the history and the
    # search as HTML; the report written beside the notebook
    results = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "execute_result"
    ]
    assert sum("image/png" in r["data"] for r in results) >= 2
    assert any(r["data"].get("text/plain", "").startswith("History: ") for r in results)
    assert any("GridSearchCV" in r["data"].get("text/html", "") for r in results)
    assert (kernel_env / "mlp-report.html").is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    """Outputs (plots, timings) change on every run; the notebooks are kept without them so that
    their diffs show only what was written."""
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name}: cell {index} has outputs; clear them before committing "
                "(jupyter nbconvert --clear-output --inplace)"
            )
