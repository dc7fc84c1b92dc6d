"""What a notebook user meets, checked through a real Jupyter kernel (nbclient + ipykernel):
re-running a cell that defines an op, ``explain_backward`` shown once, graphs as SVG,
a float64 batch into a float32 model."""

from __future__ import annotations

import sys

import nbformat
import pytest
from nbclient import NotebookClient

from tinygrad_edu.viz import dot_available

CELLS = {
    "define": '''
from tinygrad_edu.registry import unary

@unary(f="x³", df="3x²", name="cube_nb")
class cube:
    def f(m, x):
        return x * x * x
    def df(m, x, y):
        return 3 * x * x
''',
    "use": '''
from tinygrad_edu import Value, Tensor, REGISTRY, explain_backward
x = Value(2.0, label="x")
y = cube(x); y.label = "y"
print(REGISTRY["cube_nb"] is cube, y.data)
''',
    "explain": "explain_backward(y)",
    "prefix": "import sys; print(sys.prefix)",
    "node": "y",
    "dtype": '''
import numpy as np
from tinygrad_edu import nn
model = nn.MLP([4, 3, 2], rng=0)
out = model(Tensor(np.ones((5, 4))))   # a float64 batch
print(out.dtype)
''',
}


def _notebook(order: list[str]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELLS[name]) for name in order]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


@pytest.fixture(scope="module")
def executed() -> nbformat.NotebookNode:
    """The cells run in one kernel, the op's cell twice (a re-run)."""
    nb = _notebook(["define", "use", "define", "use", "explain", "node", "dtype", "prefix"])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": "."}}).execute()
    return nb


def _errors(cell) -> list[str]:
    return [f"{o['ename']}: {o['evalue']}" for o in cell.outputs if o.output_type == "error"]


def test_the_kernel_runs_this_environment(executed) -> None:
    assert executed.cells[7].outputs[0]["text"].strip() == sys.prefix
    assert all(cell.execution_count for cell in executed.cells)


def test_rerunning_a_cell_that_defines_an_op_replaces_it(executed) -> None:
    define_again, use_again = executed.cells[2], executed.cells[3]
    assert _errors(define_again) == []  # no "an op named 'cube_nb' is already registered"
    assert use_again.outputs[0]["text"].strip() == "True 8.0"


def test_explain_backward_is_shown_once_as_a_table(executed) -> None:
    cell = executed.cells[4]
    assert _errors(cell) == []
    assert [o.output_type for o in cell.outputs] == ["execute_result"]  # nothing printed too
    data = cell.outputs[0]["data"]
    assert data["text/html"].startswith('<table class="backward-trace">')
    assert "backward from y" in data["text/plain"]  # the text form is the table as well


def test_a_node_is_shown_as_its_graph(executed) -> None:
    cell = executed.cells[5]
    assert _errors(cell) == []
    data = cell.outputs[0]["data"]
    if dot_available():
        assert "<svg" in data["image/svg+xml"] and "text/markdown" not in data
    else:
        assert "apt-get install graphviz" in data["text/markdown"]
    assert data["text/plain"].startswith("Value(data=8")


def test_float64_batch_into_a_float32_model(executed) -> None:
    cell = executed.cells[6]
    assert _errors(cell) == []
    assert cell.outputs[0]["text"].strip() == "float32"
