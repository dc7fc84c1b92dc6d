"""Seeing the backward pass as a graph: draw_graph of a gradient, explain_backward of a
second-order pass, ``tinygrad-edu graph --order N``, and ``derivative``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_edu import Tensor, Value, derivative, draw_graph, explain_backward, grad
from tinygrad_edu.cli import main
from tinygrad_edu.viz import dot_available
from tinygrad_edu.viz.graph import CHAIN_OP_FILL, OP_FILL, save


def test_draw_graph_of_a_gradient_marks_the_ops_the_chain_rule_made():
    x = Value(0.5, label="x")
    y = x.tanh()
    (dy,) = grad(y, x, create_graph=True)  # seed × (1 − y·y): mul, mul, sub
    dot = draw_graph(dy, forward=y).source
    assert dot.count(f'fillcolor="{CHAIN_OP_FILL}"') == 3
    assert dot.count(f'fillcolor="{OP_FILL}"') == 1  # tanh: the forward op, reused
    assert "the 3 ops the chain rule made" in dot
    assert "seed" in dot
    plain = draw_graph(dy).source  # without forward= nothing is marked
    assert CHAIN_OP_FILL not in plain and "legend" not in plain


def test_backward_create_graph_values_are_drawn_with_their_numbers():
    x = Value(0.75, label="x")
    (x * x).backward(create_graph=True)
    assert isinstance(x.grad, Value)
    assert "grad 1.5" in draw_graph(x).source
    t = Tensor(np.array([1.0, 2.0]), requires_grad=True, label="t")
    (t * t).sum().backward(create_graph=True)
    assert "grad [2, 4]" in draw_graph(t).source


def test_explain_backward_of_a_second_order_pass(capsys):
    x = Value(0.5, label="x")
    (dy,) = grad(x.tanh(), x, create_graph=True)
    trace = explain_backward(dy, print_steps=True)
    ops = [s.op for s in trace.steps]
    assert {"mul", "sub", "tanh"} <= set(ops) and ops[0] == "mul"
    t = math.tanh(0.5)
    assert x.grad == pytest.approx(-2 * t * (1 - t * t), rel=1e-14)  # tanh''
    assert trace.steps[-1].parent == "x"
    assert "tanh" in capsys.readouterr().out


def test_cli_graph_order_2_draws_the_graph_of_f_prime(capsys):
    assert main(["graph", "--order", "2", "tanh(x)"]) == 0
    out = capsys.readouterr().out
    assert "df/dx" in out and "the 3 ops the chain rule made" in out
    assert "derivative of order 1 of f = tanh(x)" in out
    t = math.tanh(0.5)
    assert f"grad {-2 * t * (1 - t * t):.4g}" in out  # x.grad after f′'s backward: f″(0.5)


def test_cli_graph_order_3_and_set(capsys):
    assert main(["graph", "--order", "3", "sigmoid(x*w)", "--set", "x=1", "w=2"]) == 0
    assert "d2f/dx2" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["graph", "nuron"], "unknown example 'nuron'"),
    (["graph", "neuron", "--order", "2"], "--order goes with an expression"),
    (["graph", "--order", "0", "tanh(x)"], "--order must be >= 1"),
])
def test_cli_graph_order_bad_input(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_graph_order_png_is_written(tmp_path):
    if not dot_available():
        pytest.skip("Graphviz `dot` not installed")
    path = tmp_path / "fprime.png"
    assert main(["graph", "--order", "2", "tanh(x)", "-o", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_derivative_of_registry_activations():
    xs = np.linspace(-2.0, 2.0, 9)
    t = np.tanh(xs)
    np.testing.assert_allclose(derivative("tanh", xs, 0), t, rtol=1e-15)
    np.testing.assert_allclose(derivative("tanh", xs, 1), 1 - t * t, rtol=1e-14)
    np.testing.assert_allclose(derivative("tanh", xs, 2), -2 * t * (1 - t * t), atol=1e-14)
    s = 1 / (1 + np.exp(-xs))
    np.testing.assert_allclose(derivative("sigmoid", xs, 2), s * (1 - s) * (1 - 2 * s),
                               atol=1e-14)
    pdf = np.exp(-xs * xs / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(derivative("gelu", xs, 2), pdf * (2 - xs * xs), atol=1e-14)
    np.testing.assert_array_equal(derivative("relu", [-1.0, 2.0], 2), [0.0, 0.0])
    with pytest.raises(ValueError, match="softmax is not elementwise"):
        derivative("softmax", xs, 1)
    with pytest.raises(ValueError, match="order must be a whole number"):
        derivative("tanh", xs, -1)


def test_gradient_graph_picture_is_saved(tmp_path):
    if not dot_available():
        pytest.skip("Graphviz `dot` not installed")
    x = Tensor(np.array([0.3, -0.7]), requires_grad=True, label="x")
    y = x.tanh().sum()
    (g,) = grad(y, x, create_graph=True)
    path = save(draw_graph(g, forward=y), tmp_path / "g.svg")
    assert "<svg" in path.read_text()



def _written_df(op, z):
    """The registry's written f′ at the points ``z``."""
    from tinygrad_edu.numerics import ARRAY
    from tinygrad_edu.registry import ONE

    y = op.f(ARRAY, z, **op.params)
    dy = np.ones_like(z) if op.df is ONE else op.df(ARRAY, z, y, **op.params)
    return np.broadcast_to(np.asarray(dy, dtype=np.float64), z.shape)


def test_gallery_panels_draw_the_engines_second_derivative() -> None:
    """The gallery's third curve is f″ computed by the engine (grad of grad), checked here
    against the closed forms tanh″ = −2t(1 − t²) and σ″ = σ(1 − σ)(1 − 2σ), and against
    central differences of the registry's written f′ for every drawn activation."""
    from tinygrad_edu.registry import activation_ops, get
    from tinygrad_edu.viz.plot import curves

    x, lines = curves(get("tanh"))
    assert [c.label for c in lines] == ["f(x)", "f′(x)", "f″(x) (engine)"]
    t = np.tanh(x)
    np.testing.assert_allclose(lines[2].y, -2 * t * (1 - t * t), rtol=1e-12, atol=1e-14)
    x, lines = curves(get("sigmoid"))
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(lines[2].y, s * (1 - s) * (1 - 2 * s), rtol=1e-10, atol=1e-14)
    h = 1e-5
    for op in activation_ops():
        if op.kind != "unary":
            continue
        x, lines = curves(op)
        kinks = np.asarray(op.kinks or [np.inf], dtype=np.float64)
        xs = x[np.all(np.abs(x[:, None] - kinks) > 1e-3, axis=1)]  # away from kinks
        ys = lines[2].y[np.all(np.abs(x[:, None] - kinks) > 1e-3, axis=1)]
        numerical = (_written_df(op, xs + h) - _written_df(op, xs - h)) / (2 * h)
        np.testing.assert_allclose(ys, numerical, rtol=1e-6, atol=1e-7, err_msg=op.name)
