"""The step-by-step backward: every step's arithmetic checked numerically, for Values
(including a reused node) and Tensors (including a broadcast add and its reduction)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import Tensor, Value
from tinygrad_edu.viz import BackwardTrace, examples, explain_backward
from tinygrad_edu.viz.explain import reduction_axes


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Reference: sum ``g`` back to ``shape`` over the broadcast axes (written here)."""
    g = np.asarray(g)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def by_name(root) -> dict:
    return {n.label: n for n in root.topological_order() if n.label}


def check_totals(trace: BackwardTrace, root) -> None:
    """The last running total of every parent equals its final .grad."""
    nodes = {f"n{k}": n for k, n in enumerate(root.topological_order())}  # by node id:
    last = {}  # names are short expressions, and two nodes may share one (x*w twice)
    for step in trace.steps:
        last[step.parent_id] = step.total
    assert last, "no steps recorded"
    for name, total in last.items():
        np.testing.assert_allclose(total, nodes[name].grad, rtol=1e-6)


def check_products(trace: BackwardTrace, root) -> None:
    nodes = {f"n{k}": n for k, n in enumerate(root.topological_order())}
    for step in trace.steps:
        if step.local is None:
            continue
        product = np.asarray(step.upstream) * np.asarray(step.local)
        parent_shape = np.shape(nodes[step.parent_id].data)
        np.testing.assert_allclose(step.contribution, unbroadcast(product, parent_shape),
                                   rtol=1e-6, atol=1e-7)
        previous = 0.0 if step.previous is None else step.previous  # first contribution
        np.testing.assert_allclose(step.total, np.asarray(previous) + step.contribution,
                                   rtol=1e-6, atol=1e-7)


def test_neuron_steps_are_exact_and_in_execution_order() -> None:
    o = examples.neuron(backward=False)
    trace = explain_backward(o, print_steps=False)
    assert len(trace.steps) == 9  # one per edge
    assert [s.index for s in trace.steps] == list(range(1, 10))
    first = trace.steps[0]
    assert (first.node, first.op, first.parent) == ("o", "tanh", "n")
    assert first.upstream == 1.0 and first.local == pytest.approx(1 - o.data**2)
    for s in trace.steps:
        assert s.contribution == s.upstream * s.local  # exactly what backward computed
    check_totals(trace, o)
    nodes = by_name(o)
    assert nodes["x1"].grad == pytest.approx(-1.5, abs=1e-3)
    # a node's upstream is complete when its step runs: it equals the node's final grad
    for s in trace.steps:
        assert s.upstream == nodes[s.node].grad


def test_reused_node_accumulates_across_steps() -> None:
    a = Value(3.0, label="a")
    y = a * a
    y.label = "y"
    trace = explain_backward(y, print_steps=False)
    assert [(s.parent, s.local, s.contribution, s.previous, s.total) for s in trace.steps] == [
        ("a", 3.0, 3.0, 0.0, 3.0),
        ("a", 3.0, 3.0, 3.0, 6.0),
    ]
    assert a.grad == 6.0


def test_same_gradients_as_plain_backward() -> None:
    plain, traced = examples.neuron(backward=True), examples.neuron(backward=False)
    explain_backward(traced, print_steps=False)
    for p, t in zip(plain.topological_order(), traced.topological_order()):
        assert p.grad == t.grad


def test_explain_backward_returns_one_rich_object_and_prints_nothing(capsys) -> None:
    x = Value(2.0, label="x")
    y = (x * x).exp()
    y.label = "y"
    trace = explain_backward(y)
    assert isinstance(trace, BackwardTrace)
    assert capsys.readouterr().out == ""  # a notebook shows the returned object, once
    assert repr(trace) == str(trace)  # a terminal echo shows the table
    assert "backward from y" in repr(trace) and "x.grad" in repr(trace)
    assert trace._repr_html_().startswith('<table class="backward-trace">')
    assert x.grad == pytest.approx(4 * np.exp(4.0))
    explain_backward(y, print_steps=True)  # the command line asks for the print
    assert "backward from y" in capsys.readouterr().out
    one = Value(1.0, label="x") * 2  # the constant 2 takes no step: one step, said so
    assert ", 1 step: upstream" in str(explain_backward(one))


def test_tensor_broadcast_add_shows_its_reduction() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((32, 10)), label="x")
    w = Tensor(rng.standard_normal((10, 10)), requires_grad=True, label="W")
    b = Tensor(rng.standard_normal(10), requires_grad=True, label="b")
    z = x @ w
    z.label = "z"
    h = z + b
    h.label = "h"
    loss = h.tanh().mean()
    loss.label = "loss"
    trace = explain_backward(loss, print_steps=False)
    check_products(trace, loss)
    check_totals(trace, loss)
    to_b = next(s for s in trace.steps if s.parent == "b")
    assert to_b.reduction == "(32, 10) summed over axis 0 → (10,)"
    assert np.shape(to_b.contribution) == (10,)
    to_z = next(s for s in trace.steps if s.parent == "z")
    assert to_z.reduction == ""
    to_w = next(s for s in trace.steps if s.parent == "W")
    assert to_w.local is None and to_w.formula == "∂B = Aᵀ @ G"
    np.testing.assert_allclose(to_w.contribution, x.data.T @ to_z.total, rtol=1e-6)
    text = str(trace)
    assert "(32, 10) summed over axis 0 → (10,)" in text
    assert "‖·‖=" in text  # big arrays as shape and norm
    assert "(10, 10) ‖·‖=" in text


def test_keepdims_style_broadcast_reduction() -> None:
    a = Tensor(np.ones((4, 3)), requires_grad=True, label="a")
    c = Tensor(np.full((4, 1), 2.0), requires_grad=True, label="c")
    y = (a * c).sum()
    trace = explain_backward(y, print_steps=False)
    to_c = next(s for s in trace.steps if s.parent == "c")
    assert to_c.reduction == "(4, 3) summed over axis 1 → (4, 1)"
    check_products(trace, y)
    check_totals(trace, y)


def test_reduction_axes() -> None:
    assert reduction_axes((5, 4, 3), (3,)) == (0, 1)
    assert reduction_axes((5, 4, 3), (4, 1)) == (0, 2)
    assert reduction_axes((2, 2), (2, 2)) == ()


shapes = st.sampled_from([((3, 4), (4,)), ((3, 4), (3, 1)), ((2, 3, 4), (3, 4)),
                          ((2, 3), (2, 3)), ((3, 1), (1, 4))])


@given(shapes, st.sampled_from(["add", "sub", "mul", "div"]), st.integers(0, 2**16))
def test_property_tensor_steps_match_backward(pair, op, seed) -> None:
    rng = np.random.default_rng(seed)
    sa, sb = pair
    a = Tensor(rng.uniform(0.5, 2, sa), requires_grad=True, label="a")
    b = Tensor(rng.uniform(0.5, 2, sb), requires_grad=True, label="b")
    y = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[op]
    y.label = "y"
    loss = y.sigmoid().sum()
    trace = explain_backward(loss, print_steps=False)
    check_products(trace, loss)
    check_totals(trace, loss)
    for s in trace.steps:
        shape = a.shape if s.parent == "a" else b.shape if s.parent == "b" else None
        if shape is not None and shape != np.broadcast_shapes(sa, sb):
            assert "summed over" in s.reduction


def test_json_and_html_views() -> None:
    trace = explain_backward(examples.mlp(backward=False), print_steps=False)
    data = json.loads(trace.to_json())
    assert data["root"] == "loss" and len(data["steps"]) == len(trace.steps)
    step = data["steps"][-1]
    assert {"upstream", "local", "contribution", "total", "formula"} <= set(step)
    assert "shape" in data["steps"][0]["contribution"]
    html = trace.to_html()
    assert html.count("<tr data-step=") == len(trace.steps)


def test_text_table_is_aligned() -> None:
    trace = explain_backward(examples.neuron(backward=False), print_steps=False)
    lines = str(trace).splitlines()
    header, rule = lines[1], lines[2]
    assert header.startswith("#") and set(rule.replace(" ", "")) == {"-"}
    column = header.index("upstream")
    for line in lines[3:]:
        assert line[column - 1] == " "  # columns line up under the header
    assert len(lines) == 3 + len(trace.steps)


def test_draw_graph_and_explain_backward_are_top_level_names() -> None:
    import tinygrad_edu
    from tinygrad_edu import draw_graph, explain_backward, viz

    assert draw_graph is viz.draw_graph and explain_backward is viz.explain_backward
    assert {"draw_graph", "explain_backward"} <= set(tinygrad_edu.__all__)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        tinygrad_edu.not_a_name  # noqa: B018
