"""The graph pictures: DOT content (counts, labels, local gradients), SVG rendering,
summarising big graphs, Jupyter display, the missing-Graphviz path and the layer view."""

from __future__ import annotations

import html
import os
import re

import numpy as np
import pytest

from tinygrad_edu import Tensor, Value, cross_entropy, nn
from tinygrad_edu.viz import (
    GraphvizNotFound,
    dot_available,
    draw_graph,
    examples,
    explain_backward,
    mimebundle,
    render_svg,
    save,
)
from tinygrad_edu.viz._fmt import node_names, num
from tinygrad_edu.viz.module_view import draw_training_step, trace_modules


def require_dot() -> None:
    """Skip without Graphviz locally; in CI (where it is installed) its absence fails."""
    if not dot_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Graphviz `dot` is missing in CI (.ci/run installs it)")
        pytest.skip("Graphviz `dot` not installed")


def dot_nodes(source: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^\t(\w+) \[", source, re.MULTILINE)
            if m.group(1) not in ("node", "edge", "graph")]


def dot_edges(source: str) -> list[tuple[str, str]]:
    return re.findall(r"^\t(\w+) -> (\w+)", source, re.MULTILINE)


def edge_labels(source: str) -> list[str]:
    return re.findall(r'-> \w+ \[label="([^"]*)"', source)


def graph_counts(root) -> tuple[int, int]:
    """(value nodes + op nodes, parent edges + op→value edges) of the real graph."""
    order = root.topological_order()
    ops = [n for n in order if n._op is not None]
    return len(order) + len(ops), sum(len(n._parents) for n in ops) + len(ops)


def test_neuron_dot_has_every_node_edge_and_local_gradient() -> None:
    o = examples.neuron()
    source = draw_graph(o).source
    nodes, edges = graph_counts(o)
    assert len(dot_nodes(source)) == nodes == 15  # 10 values, 5 ops
    assert len(dot_edges(source)) == edges == 14
    for node in o.topological_order():
        assert f"data {num(node.data)}" in source
        assert f"grad {num(node.grad)}" in source
    labels = edge_labels(source)
    assert "∂/∂x1 = w1 = -3" in labels  # d(x1·w1)/dx1 = w1
    assert "∂/∂w1 = x1 = 2" in labels
    assert "∂/∂b = 1" in labels
    assert f"∂/∂n = 1 − o² = {num(1 - o.data**2)}" in labels  # y of 1 − y² is the output o
    assert "∂/∂(x1·w1) = 1" in labels
    assert len(labels) == 9  # every edge into an op carries its local gradient


def test_no_local_gradients_before_backward_and_with_show_grad_false() -> None:
    o = examples.neuron(backward=False)
    assert "∂/∂" not in draw_graph(o).source
    o.backward()
    source = draw_graph(o, show_grad=False).source
    assert "∂/∂" not in source and "grad " not in source
    assert "∂/∂" in draw_graph(o).source


def test_reused_node_gets_two_edges() -> None:
    a = Value(3.0, label="a")
    y = a * a
    y.backward()
    source = draw_graph(y).source
    assert dot_edges(source).count(("n0", "n1_op")) == 2
    assert edge_labels(source).count("∂/∂a = a = 3") == 2
    assert "grad 6" in source


def test_tensor_records_show_shape_dtype_values_or_summary() -> None:
    loss = examples.mlp()
    source = draw_graph(loss).source
    nodes, edges = graph_counts(loss)
    assert len(dot_nodes(source)) == nodes
    assert len(dot_edges(source)) == edges
    assert "(3, 4) float32" in source and "(4,) float32" in source  # W1, b1
    b2 = next(n for n in loss.topological_order() if n.label == "b2")
    assert "[" + ", ".join(num(v) for v in b2.data) + "]" in source  # small: values
    assert "min " in source and " mean " in source and " max " in source  # bigger: summary
    labels = edge_labels(source)
    assert "∂A = G @ Bᵀ" in labels and "∂B = Aᵀ @ G" in labels  # tensor op: formula
    assert "∂x = (softmax(x) − onehot(y)) / N" in labels
    x = next(n for n in loss.topological_order() if n.label == "X")
    assert "grad —" in source and not x.requires_grad


def test_big_graph_is_summarised_not_drawn_whole() -> None:
    x = Value(0.5, label="x")
    y = x
    for _ in range(3000):  # deep: no recursion anywhere
        y = y * 1.0001 + 0.0
    y.backward()
    source = draw_graph(y, max_nodes=60).source
    assert len(dot_nodes(source)) <= 2 * 60 + 1
    assert re.search(r"… \d+ more nodes", source)
    assert "summary ->" in source


def test_rankdir_and_title() -> None:
    source = draw_graph(examples.neuron(), rankdir="TB", title="a neuron").source
    assert "rankdir=TB" in source and "a neuron" in source


def test_svg_rendering_has_the_labels() -> None:
    require_dot()
    svg = html.unescape(render_svg(draw_graph(examples.neuron())))
    assert svg.lstrip().startswith("<?xml") or svg.lstrip().startswith("<svg")
    assert "<svg" in svg
    for text in ("x1", "data 2", "grad 0.5", "tanh", "∂/∂x1 = w1 = -3"):
        assert text in svg


def test_save_by_suffix(tmp_path) -> None:
    dot = draw_graph(examples.neuron())
    assert "digraph" in save(dot, tmp_path / "g.dot").read_text()
    with pytest.raises(ValueError, match="unknown output format"):
        save(dot, tmp_path / "g.bmp")
    require_dot()
    assert save(dot, tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert save(dot, tmp_path / "g.svg").read_text().count("<svg") == 1


def test_jupyter_mimebundle() -> None:
    require_dot()
    o = examples.neuron()
    assert "<svg" in o._repr_svg_()
    assert o._repr_markdown_() is None  # with dot, the picture is all a notebook gets
    t = Tensor(np.ones(3), requires_grad=True)
    assert "<svg" in mimebundle((t * 2).sum())["image/svg+xml"]


def test_without_dot_source_still_works_and_rendering_says_how_to_install(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    assert not dot_available()
    o = examples.neuron()
    dot = draw_graph(o)
    assert "digraph" in dot.source
    with pytest.raises(GraphvizNotFound, match="apt-get install graphviz") as info:
        render_svg(dot)
    assert "brew install graphviz" in str(info.value)
    with pytest.raises(GraphvizNotFound):
        save(dot, tmp_path / "g.svg")
    assert save(dot, tmp_path / "g.dot").exists()
    assert o._repr_svg_() is None
    assert "apt-get install graphviz" in o._repr_markdown_() and repr(o) in o._repr_markdown_()
    bundle = mimebundle(o)
    assert "image/svg+xml" not in bundle
    assert "apt-get install graphviz" in bundle["text/plain"]
    assert bundle["text/vnd.graphviz"] == dot.source


def test_ipython_renders_svg_only_for_front_ends_that_show_it(monkeypatch) -> None:
    """A terminal IPython shows text only and must not run `dot` on every echo; a notebook
    front end (SVG active) gets the picture."""
    require_dot()
    from IPython.core import formatters  # the dev extra's ipykernel brings IPython

    from tinygrad_edu.viz import graph as graph_module

    calls = []
    real = graph_module.render_svg
    monkeypatch.setattr(graph_module, "render_svg", lambda g: calls.append(1) or real(g))
    o = examples.neuron()
    terminal = formatters.DisplayFormatter()
    terminal.active_types = ["text/plain"]  # what TerminalInteractiveShell sets
    data, _ = terminal.format(o)
    assert set(data) == {"text/plain"} and data["text/plain"] == repr(o)
    assert calls == []  # dot never ran
    notebook = formatters.DisplayFormatter()  # every type active, as in ipykernel
    data, _ = notebook.format(o)
    assert "<svg" in data["image/svg+xml"] and len(calls) == 1
    assert "text/markdown" not in data


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_layer_view_of_one_training_step_is_small_and_readable(name) -> None:
    dot = examples.network_step(name, batch=4)
    source = dot.source
    assert len(dot_nodes(source)) < 20  # one node per layer, not thousands of op nodes
    assert "Linear(" in source and "‖∇‖" in source and "CE" in source
    if name == "cnn":
        assert "Conv2d(1, 16" in source and "weight (16, 1, 5, 5)" in source
        assert "MaxPool2d" in source and "(4, 16, 28, 28)" in source
    else:
        assert "weight (256, 784)" in source and "(4, 784)" in source


def test_trace_modules_restores_forward_and_counts_calls() -> None:
    model = nn.MLP([6, 5, 3], rng=0)
    x = Tensor(np.ones((2, 6), np.float32), label="x")
    with trace_modules(model) as trace:
        loss = cross_entropy(model(x), [0, 2])
    assert [c.name for c in trace.calls] == ["layers.0", "layers.1", "layers.2"]
    assert all("forward" not in m.__dict__ for m in model.modules())
    dot = draw_training_step(model, x, [0, 2])
    assert len(dot_nodes(dot.source)) == 5  # input, 3 layers, loss
    assert loss.data.shape == ()


def test_long_expressions_name_every_node_by_its_short_expression() -> None:
    from tinygrad_edu.viz.expression import evaluate

    y = evaluate("tanh(x*w + b) * (x*w + b)**3 + 3*x", {"x": 0.5, "w": -1.2, "b": 0.3})
    y.backward()
    source = draw_graph(y).source
    names = node_names(y.topological_order())
    assert not any(name.startswith("#") for name in names.values())  # no bare #5 any more
    assert "tanh(x*w + b)*(x*w + b)**3" in source
    assert "tanh(x*w + b)*(x*w + b)**3 + 3*x" in source  # the output: its whole expression
    trace = explain_backward(y)
    assert trace.root_name == "tanh(x*w + b)*(x*w + b)**3 + 3*x"


def test_formulas_are_filled_with_the_nodes_names_and_values() -> None:
    from tinygrad_edu.viz.expression import evaluate

    y = evaluate("(x*w + b)**3 + leaky_relu(x, alpha=0.2)", {"x": -0.5, "w": 2, "b": 0.3})
    y.backward()
    formulas = {s.named_formula for s in explain_backward(y).steps}
    assert "∂/∂(x*w + b) = 3 · (x*w + b)^2" in formulas  # p · x^(p−1), p = 3 filled in
    assert "∂/∂x = 1 if x > 0 else 0.2" in formulas  # α = 0.2
    assert "∂/∂x = w" in formulas and "∂/∂(x*w) = 1" in formulas
    assert not any(re.search(r"∂f/∂[ab]|f'\(x\)|\bp\b|α", f) for f in formulas)
    assert "∂/∂(x*w + b) = 3 · (x*w + b)^2 = 1.47" in edge_labels(draw_graph(y).source)


def test_constants_are_drawn_without_a_gradient() -> None:
    x = Value(1.5, label="x")
    y = 3 * x + 2
    y.backward()
    source = draw_graph(y).source
    assert "(3).grad" not in source and "grad 1.5" not in source  # d y/d 3 = x is not shown
    assert re.search(r'n\d+ \[label=3 .*style="rounded,dashed"', source)
    assert all("∂/∂3" not in label for label in edge_labels(source))
    assert x.grad == 3.0  # the engine itself is unchanged
    assert [s.parent for s in explain_backward(y).steps] == ["3*x", "x"]


def test_params_name_a_models_tensors_as_make_dot_does() -> None:
    from tinygrad_edu.nn import functional as F

    model = nn.MLP([3, 4, 2], rng=0)
    loss = F.cross_entropy(model(Tensor(np.ones((2, 3)))), np.array([0, 1]))
    loss.backward()
    source = draw_graph(loss, params=dict(model.named_parameters())).source
    for name, _ in model.named_parameters():
        assert f"{name} |" in source or f"{{ {name} |" in source
    steps = explain_backward(loss, params=dict(model.named_parameters())).steps
    assert {"layers.0.weight", "layers.2.bias"} <= {s.parent for s in steps}
    with pytest.raises(TypeError, match="named_parameters"):
        draw_graph(loss, params=list(model.parameters()))


SHARED_MNIST = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared/data/mnist"


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_layer_view_uses_a_real_mnist_batch_and_its_loss_is_near_ln_10(name, monkeypatch):
    from tinygrad_edu.datasets import load_mnist

    if SHARED_MNIST.is_dir():
        monkeypatch.setenv("TINYGRAD_EDU_DATA", str(SHARED_MNIST))
    load_mnist()  # found, or fetched into the cache as the training tests do
    source = examples.network_step(name, batch=16).source
    assert "MNIST batch, 16 images" in source and "synthetic" not in source
    loss = float(re.search(r"CE\n= ([\d.]+)", source).group(1))
    assert 1.9 < loss < 3.3  # at initialisation ≈ ln 10 = 2.30 (random normal images: 7.3)


def test_layer_view_without_mnist_says_synthetic(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYGRAD_EDU_DATA", str(tmp_path))  # no MNIST here...
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # ...nor in the cache
    source = examples.network_step("mlp", batch=4).source
    assert "synthetic batch (no MNIST found), 4 images" in source
    assert "at initialisation: synthetic" in source
