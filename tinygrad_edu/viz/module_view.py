"""A layer-level picture of a network: one box per module call, one small box per free op.

A training step of an MNIST MLP builds a tensor graph of a few dozen nodes, a CNN's a few
more, and a Value-engine network thousands; the layer view draws what a person thinks in:

>>> import numpy as np
>>> from tinygrad_edu import Tensor, cross_entropy, nn
>>> model = nn.MLP([784, 32, 10], rng=0)
>>> x, labels = Tensor(np.zeros((8, 784), np.float32)), np.arange(8)
>>> with trace_modules(model) as calls:
...     loss = cross_entropy(model(x), labels)
>>> loss.backward()
>>> dot = draw_modules(loss, calls)
>>> [c.name for c in calls.calls]
['layers.0', 'layers.1', 'layers.2']

Each leaf module (one without sub-modules: Linear, Conv2d, ReLU, MaxPool2d, Flatten...) is
recorded while it runs (its ``forward`` is wrapped for the duration of the ``with`` block);
the view then walks the tensor graph backwards from the output and replaces everything a
call computed by a single box listing the module, its parameters' shapes (and gradient
norms after backward) and its output shape.  Ops outside modules (the loss, a reshape in
``forward``) appear as small boxes, inputs as their shapes.  Edges carry the shape of the
tensor that flows along them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import graphviz
import numpy as np

from ..autograd import Node
from . import _fmt
from .graph import EDGE_LABEL_COLOR, LEAF_FILL, OP_FILL, ROOT_FILL, _esc

__all__ = ["ModuleCall", "ModuleTrace", "draw_modules", "draw_training_step", "trace_modules"]

MODULE_FILL = "#e0e7ff"


@dataclass
class ModuleCall:
    """One call of a leaf module: its dotted name, the module, its inputs and output."""

    name: str
    module: Any
    inputs: list[Any]
    output: Any


@dataclass
class ModuleTrace:
    """The leaf-module calls recorded by :func:`trace_modules`, in call order."""

    calls: list[ModuleCall] = field(default_factory=list)

    def owner_of(self) -> dict[int, ModuleCall]:
        """Which call produced each output node (by node identity)."""
        owners = {}
        for call in self.calls:
            if isinstance(call.output, Node) and all(call.output is not x for x in call.inputs):
                owners[id(call.output)] = call
        return owners


def _leaf_modules(model: Any) -> list[tuple[str, Any]]:
    return [(name or type(m).__name__, m) for name, m in model.named_modules()
            if not list(m.children())]


@contextmanager
def trace_modules(model: Any) -> Iterator[ModuleTrace]:
    """Record every leaf-module call of ``model`` made inside the ``with`` block."""
    trace = ModuleTrace()
    patched = []
    for name, module in _leaf_modules(model):
        original = module.forward

        def wrapper(*args: Any, _name: str = name, _module: Any = module,
                    _forward: Any = original, **kwargs: Any) -> Any:
            out = _forward(*args, **kwargs)
            inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, Node)]
            trace.calls.append(ModuleCall(_name, _module, inputs, out))
            return out

        module.__dict__["forward"] = wrapper  # shadows the class's forward on this instance
        patched.append(module)
    try:
        yield trace
    finally:
        for module in patched:
            module.__dict__.pop("forward", None)


# ------------------------------------------------------------------ labels
def _module_title(name: str, module: Any) -> str:
    extra = module.extra_repr() if hasattr(module, "extra_repr") else ""
    return f"{name}: {type(module).__name__}({extra})"


def _param_line(pname: str, p: Any) -> str:
    line = f"{pname} {_fmt.shape_text(p.data.shape)}"
    if p.grad is not None:
        line += f"  ‖∇‖ {_fmt.num(_fmt.norm(p.grad))}"
    return line


def _module_label(call: ModuleCall) -> str:
    fields = [_module_title(call.name, call.module)]
    params = getattr(call.module, "_parameters", {})
    fields += [_param_line(k, p) for k, p in params.items() if p is not None]
    fields.append(f"out {_fmt.shape_text(call.output.data.shape)}")
    return "{ " + " | ".join(_esc(f) for f in fields) + " }"


def _value_text(node: Any) -> str:
    data = np.asarray(node.data)
    if data.size == 1:
        return f"= {_fmt.num(data.reshape(()))}"
    return _fmt.shape_text(data.shape)


# ------------------------------------------------------------------ the view
class _ModuleGraph:
    """Builds the condensed Digraph by walking the tensor graph from the output."""

    def __init__(self, trace: ModuleTrace, param_names: dict[int, str], rankdir: str) -> None:
        self.owners = trace.owner_of()
        self.param_names = param_names
        self.ids: dict[int, str] = {}
        self.dot = graphviz.Digraph(format="svg")
        self.dot.attr(rankdir=rankdir, fontname="Helvetica", nodesep="0.3", ranksep="0.3")
        self.dot.attr("node", fontname="Helvetica", fontsize="11")
        self.dot.attr("edge", fontname="Helvetica", fontsize="9", fontcolor=EDGE_LABEL_COLOR,
                      color="#475569", arrowsize="0.7")

    def node_id(self, node: Any) -> str:
        return self.ids.setdefault(id(node), f"m{len(self.ids)}")

    def emit(self, node: Any, root: Any) -> list[Any]:
        """Draw ``node`` (a call output, an op result or a leaf); return what feeds it."""
        nid = self.node_id(node)
        call = self.owners.get(id(node))
        if call is not None:
            self.dot.node(nid, _module_label(call), shape="record", style="rounded,filled",
                          fillcolor=ROOT_FILL if node is root else MODULE_FILL, id=nid)
            return call.inputs
        if node._op is None:
            name = self.param_names.get(id(node)) or node.label or "input"
            self.dot.node(nid, f"{name}\n{_value_text(node)}", shape="box", style="filled",
                          fillcolor=LEAF_FILL, id=nid)
            return []
        label = f"{node._op.symbol}\n{_value_text(node)}"
        self.dot.node(nid, label, shape="box", style="rounded,filled",
                      fillcolor=ROOT_FILL if node is root else OP_FILL, fontsize="10", id=nid)
        return list(node._parents)

    def build(self, root: Any) -> graphviz.Digraph:
        done: set[int] = set()
        stack = [root]
        while stack:
            node = stack.pop()
            if id(node) in done:
                continue
            done.add(id(node))
            for src in self.emit(node, root):
                if not getattr(src, "requires_grad", True) and src._op is None and \
                        id(src) not in self.param_names and src.data.size == 1:
                    continue  # constants such as the 2 in x ** 2 or a scale factor
                self.dot.edge(self.node_id(src), self.node_id(node),
                              label=_fmt.shape_text(np.shape(src.data)))
                stack.append(src)
        return self.dot


def draw_modules(output: Any, trace: ModuleTrace, model: Any = None,
                 rankdir: str = "TB") -> graphviz.Digraph:
    """The layer-level graph of ``output`` (e.g. the loss), using the calls in ``trace``.

    Pass ``model`` to name parameters used outside of their modules by their dotted path.
    """
    names = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
    return _ModuleGraph(trace, names, rankdir).build(output)


def draw_training_step(model: Any, inputs: Any, labels: Any, loss_fn: Any = None,
                       rankdir: str = "TB") -> graphviz.Digraph:
    """Run one forward and backward pass of ``model`` and draw it layer by layer.

    ``loss_fn(logits, labels)`` defaults to :func:`tinygrad_edu.cross_entropy`.  The model's
    gradients are zeroed first and hold this step's gradients afterwards (no update).
    """
    from ..losses import cross_entropy
    from ..tensor import Tensor

    loss_fn = loss_fn or cross_entropy
    x = inputs if isinstance(inputs, Tensor) else Tensor(inputs, label="images")
    if not x.label:
        x.label = "input"
    with trace_modules(model) as trace:
        loss = loss_fn(model(x), labels)
    loss.label = loss.label or "loss"
    model.zero_grad()
    loss.backward()
    return draw_modules(loss, trace, model, rankdir)
