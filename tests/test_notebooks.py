"""Every notebook in examples/ runs from top to bottom (nbclient, the ``python3`` kernel of
this environment) in fast mode: ``TINYGRAD_EDU_FAST=1`` makes the lessons use small
subsets.  A lesson notebook must also display its figures; the walkthrough must end with
the MNIST run's accuracy."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_the_notebooks_are_there():
    names = {p.name for p in NOTEBOOKS}
    assert "walkthrough.ipynb" in names
    assert len([n for n in names if n.startswith("lesson_")]) == 9


def execute(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnist_dir: Path):
    monkeypatch.setenv("TINYGRAD_EDU_FAST", "1")
    monkeypatch.setenv("TINYGRAD_EDU_LESSON_OUT", str(tmp_path / "figures"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernelspec runs "python": make it this environment's interpreter
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TINYGRAD_EDU_DATA", str(mnist_dir))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return notebook


def outputs(notebook) -> list[dict]:
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch, real_mnist_dir):
    notebook = execute(path, tmp_path, monkeypatch, real_mnist_dir)  # raises CellExecutionError on failure
    outs = outputs(notebook)
    assert not [o for o in outs if o.get("output_type") == "error"]
    if path.stem.startswith("lesson_"):
        images = [o for o in outs if "image/png" in o.get("data", {})]
        assert images, f"{path.name} displayed no figure"
        assert list((tmp_path / "figures").glob("*.png"))
    else:
        text = "".join(o.get("text", "") for o in outs)
        assert "by hand" in text and re.search(r"test accuracy \d+\.\d+%", text)
