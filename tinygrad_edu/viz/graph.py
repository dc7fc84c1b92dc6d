"""Draw a computation graph with Graphviz: data, gradients, and the local gradient on each edge.

>>> from tinygrad_edu import Value
>>> from tinygrad_edu.viz import draw_graph
>>> x, w = Value(2.0, label="x"), Value(-3.0, label="w")
>>> y = (x * w).tanh(); y.label = "y"
>>> y.backward()
>>> dot = draw_graph(y)          # a graphviz.Digraph
>>> "∂/∂x = w = -3" in dot.source   # the local gradient of x*w with respect to x is w
True

Value nodes are records ``name | data | grad`` (tensors: shape, dtype, and the values when
small, else min/mean/max); op nodes are small circles with the op's symbol; after
``backward()`` every edge into an op carries the local gradient ∂out/∂in: its value for
elementwise ops, the registry's formula for tensor ops (matmul, sum, softmax...).

The graph of a gradient (``grad(y, x, create_graph=True)``) is drawn the same way; with
``forward=y`` the nodes the chain rule made are coloured apart from the forward values
they reuse.

Only :func:`render_svg` and :func:`save` (to svg/png/pdf) need Graphviz's ``dot`` program;
building the graph and its DOT source (``draw_graph(y).source``) never does.
"""

from __future__ import annotations

import re
import shutil
from collections import deque
from pathlib import Path
from typing import Any

import graphviz
import numpy as np

from ..autograd import Node
from . import _fmt

__all__ = [
    "INSTALL_HINT",
    "GraphvizNotFound",
    "dot_available",
    "draw_graph",
    "mimebundle",
    "named_formula",
    "notebook_repr",
    "render_svg",
    "save",
]

#: How to get the ``dot`` program, shown whenever rendering needs it and it is missing.
INSTALL_HINT = (
    "Graphviz's `dot` program is needed to render graphs (the Python `graphviz` package only "
    "writes DOT text). Install it with your system's package manager: "
    "`apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), "
    "`conda install -c conda-forge graphviz`, `choco install graphviz` (Windows); "
    "see https://graphviz.org/download/. Without it, `draw_graph(y).source` still gives "
    "the DOT text."
)

#: Default limit on value nodes drawn; bigger graphs are summarised.
MAX_NODES = 150

LEAF_FILL = "#dbeafe"  # inputs and parameters
ROOT_FILL = "#dcfce7"  # the output backward started from
INNER_FILL = "#f8fafc"
OP_FILL = "#fde68a"
CHAIN_FILL = "#ede9fe"  # values made by the backward pass (draw_graph(..., forward=y))
CHAIN_OP_FILL = "#c4b5fd"
EDGE_LABEL_COLOR = "#9a3412"


class GraphvizNotFound(RuntimeError):
    """Rendering needs Graphviz's ``dot`` program, which is not installed."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(INSTALL_HINT + (f" ({detail})" if detail else ""))


def dot_available() -> bool:
    """True when Graphviz's ``dot`` program is on the PATH."""
    return shutil.which("dot") is not None


# ------------------------------------------------------------------ labels
_RECORD_SPECIAL = re.compile(r'([{}|<>"\\])')


def _esc(text: str) -> str:
    """Escape the characters that are syntax inside a Graphviz record label."""
    return _RECORD_SPECIAL.sub(r"\\\1", text)


def _grad_of(node: Any) -> Any:
    """``node.grad`` as a number or array (after ``backward(create_graph=True)`` it is a
    node: its data)."""
    grad = node.grad
    return grad.data if isinstance(grad, Node) else grad


def _data_fields(node: Any, show_grad: bool) -> list[str]:
    """The record fields after the name: data and grad (and shape/dtype for tensors)."""
    data = node.data
    if not isinstance(data, np.ndarray):
        fields = [f"data {_fmt.num(data)}"]
        if show_grad:
            fields.append(f"grad {_fmt.num(_grad_of(node))}")
        return fields
    fields = [f"{_fmt.shape_text(data.shape)} {data.dtype}", f"data {_fmt.array_summary(data)}"]
    if show_grad:
        grad = _grad_of(node)
        fields.append("grad —" if grad is None else f"grad {_fmt.array_summary(grad)}")
    return fields


def _record_label(name: str, node: Any, show_grad: bool, rankdir: str) -> str:
    """``name | data | grad``: side by side for numbers, stacked for tensors' longer fields.

    (In a left-to-right layout a record's fields stack unless wrapped in braces, and the
    other way round top to bottom.)"""
    fields = " | ".join(_esc(f) for f in [name, *_data_fields(node, show_grad)])
    stacked = isinstance(node.data, np.ndarray)
    flip = stacked != (rankdir in ("LR", "RL"))
    return "{ " + fields + " }" if flip else fields


def backward_ran(root: Any) -> bool:
    """Whether ``root.backward()`` has run (its gradient is set and non-zero)."""
    grad = _grad_of(root)
    if grad is None:
        return False
    return bool(np.any(np.asarray(grad) != 0))


#: Parameter names as the registry's formulas write them.
_PARAM_SYMBOLS = {"alpha": "α", "p": "p", "lo": "lo", "hi": "hi"}
_VARIABLE = re.compile(r"(?<![A-Za-z0-9_'])([abxy])(?![A-Za-z0-9_(])")


def fill_formula(node: Any, i: int, names: dict, limit: int = 40) -> str:
    """The right-hand side of the op's i-th local gradient formula written for this node:
    the parameters' values (``p``, ``α``...), and the inputs' and result's names for
    ``a``/``b`` (binary) or ``x``/``y`` (unary): ``p · x^(p−1)`` at ``(x*w + b)**3`` reads
    ``3 · (x*w + b)^2``.  Longer than ``limit``: the values instead of the names (Values),
    or the generic letters (tensors).  Tensor ops keep their formula."""
    op = node._op
    text = op.grad_texts[i] if i < len(op.grad_texts) else ""
    rhs = text.split("=", 1)[1].strip() if "=" in text else text.strip()
    if op.kind == "tensor":
        return rhs
    params = node._ctx if isinstance(node._ctx, dict) else {}
    for key, value in params.items():
        symbol = _PARAM_SYMBOLS.get(key)
        if symbol and isinstance(value, (int, float)):
            rhs = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(symbol)}(?![A-Za-z0-9_])",
                         _fmt.num(value), rhs)
    rhs = re.sub(r"\((-?[\d.]+)−1\)", lambda m: _fmt.num(float(m.group(1)) - 1), rhs)
    nodes = dict(zip("ab", node._parents)) if op.kind == "binary" else {"x": node._parents[0]}
    nodes["y"] = node
    main, _, note = rhs.partition("  ")
    note = note.strip()

    def named(text: str) -> str:
        if text in nodes:  # ∂(a·b)/∂a = b: the name alone, no parentheses needed
            return names[nodes[text]]
        return _VARIABLE.sub(lambda m: _fmt.wrap(names[nodes[m.group(1)]]), text)

    filled = named(main)
    if len(filled) > limit:  # too long with names: the values (Values) or the letters
        filled = main if _fmt.is_array(node.data) else _VARIABLE.sub(
            lambda m: _signed(nodes[m.group(1)].data), main)
    return filled + (f"   {named(note)}" if note else "")


def _signed(x: float) -> str:
    text = _fmt.num(x)
    return f"({text})" if text.startswith("-") else text


def named_formula(node: Any, i: int, names: dict) -> str:
    """``∂/∂x = w``: the local gradient of ``node`` with respect to its i-th input, its
    formula filled in (:func:`fill_formula`); a tensor op's formula as the registry has it."""
    op = node._op
    if op.kind == "tensor":
        return op.grad_texts[i] if i < len(op.grad_texts) else ""
    return f"∂/∂{_fmt.wrap(names[node._parents[i]])} = {fill_formula(node, i, names, limit=60)}"


def local_values(node: Any) -> tuple | None:
    """The local gradients of an elementwise op node (None for tensor ops and failures)."""
    try:
        return node._op.local(node)
    except (ArithmeticError, ValueError):
        return None


def edge_label(node: Any, i: int, local: tuple | None, names: dict) -> str:
    """The label of the edge from ``node``'s i-th parent: ``∂/∂x = w = -3`` (the formula
    filled with the node's names and values, then its value)."""
    op = node._op
    text = op.grad_texts[i] if i < len(op.grad_texts) else ""
    parent = _fmt.wrap(names[node._parents[i]])
    if op.kind == "tensor" or local is None:
        return text
    value = _fmt.brief(np.asarray(local[i]) if _fmt.is_array(local[i]) else local[i])
    formula = fill_formula(node, i, names, limit=32).split("  ")[0].strip()
    if len(formula) > 32 or " if " in formula:
        formula = ""
    if formula and formula != value and formula not in ("1", "−1"):
        return f"∂/∂{parent} = {formula} = {value}"
    return f"∂/∂{parent} = {value}"


# ------------------------------------------------------------------ summarising
def nearest_nodes(root: Any, limit: int) -> set:
    """The ``limit`` nodes closest to the output (breadth-first towards the inputs)."""
    keep = {root}
    queue = deque([root])
    while queue and len(keep) < limit:
        node = queue.popleft()
        for parent in node._parents:
            if parent not in keep and len(keep) < limit:
                keep.add(parent)
                queue.append(parent)
    return keep


def param_names(params: dict[str, Any] | None) -> dict[int, str] | None:
    """``{name: tensor}`` (``dict(model.named_parameters())``) as ``{id(tensor): name}``."""
    if params is None:
        return None
    if not isinstance(params, dict):
        raise TypeError("params: expected a dict of name -> tensor, e.g. "
                        f"dict(model.named_parameters()), got {type(params).__name__}")
    return {id(t): str(name) for name, t in params.items()}


# ------------------------------------------------------------------ the graph
def _new_digraph(rankdir: str, format: str, title: str | None) -> graphviz.Digraph:
    dot = graphviz.Digraph(format=format)
    dot.attr(rankdir=rankdir, fontname="Helvetica", bgcolor="white", nodesep="0.25",
             ranksep="0.35")
    dot.attr("node", fontname="Helvetica", fontsize="11")
    dot.attr("edge", fontname="Helvetica", fontsize="10", fontcolor=EDGE_LABEL_COLOR,
             color="#475569", arrowsize="0.7")
    if title:
        dot.attr(label=title, labelloc="t", fontsize="13")
    return dot


def _add_value_node(dot: graphviz.Digraph, node: Any, root: Any, nid: str, name: str,
                    show_grad: bool, rankdir: str, chain: bool = False) -> None:
    fill = ROOT_FILL if node is root else (LEAF_FILL if node._op is None else INNER_FILL)
    if _fmt.is_constant(node):  # a number of the expression: no gradient to show
        dot.node(nid, _esc(name), shape="box", style="rounded,dashed", color="#64748b",
                 fontcolor="#334155", id=nid, tooltip=f"constant {name}")
        return
    fill = CHAIN_FILL if chain and node is not root and node._op is not None else fill
    dot.node(nid, _record_label(name, node, show_grad, rankdir), shape="Mrecord", style="filled",
             fillcolor=fill, color="#334155", id=nid, tooltip=name)


def _add_op_node(dot: graphviz.Digraph, node: Any, nid: str, chain: bool = False) -> None:
    op = node._op
    shape = "circle" if len(op.symbol) <= 2 else "ellipse"
    dot.node(f"{nid}_op", op.symbol, shape=shape, style="filled",
             fillcolor=CHAIN_OP_FILL if chain else OP_FILL,
             color="#92400e", fontsize="12", width="0.35", height="0.35", margin="0.02",
             id=f"{nid}_op", tooltip=f"{op.name}: f = {op.f_text}")
    dot.edge(f"{nid}_op", nid, id=f"{nid}_out")


def draw_graph(
    root: Any,
    rankdir: str = "LR",
    show_grad: bool = True,
    max_nodes: int = MAX_NODES,
    format: str = "svg",
    title: str | None = None,
    forward: Any = None,
    params: dict[str, Any] | None = None,
) -> graphviz.Digraph:
    """The computation graph of ``root`` (a Value or Tensor) as a ``graphviz.Digraph``.

    One record per value (``name | data | grad``), one small op node per operation, and,
    once ``backward()`` ran (and ``show_grad``), the local gradient on every edge into an
    op.  Graphs with more than ``max_nodes`` values are summarised: the ``max_nodes`` values
    nearest the output are drawn and the rest collapse into one "… N more nodes" box.
    ``rankdir`` is Graphviz's layout direction ("LR" left to right, "TB" top to bottom).

    ``forward`` (a node, or a list of nodes) marks a gradient's graph: the values and ops
    of ``forward``'s graph are drawn as usual -- the forward values the backward pass
    reuses -- and every other op, the ones the chain rule made, in violet, with a legend.

    ``params`` names tensors that have no label, as torchviz's ``make_dot`` does:
    ``draw_graph(loss, params=dict(model.named_parameters()))`` shows ``layers.0.weight``.
    Unlabelled results are named by their short expression (``tanh(x*w + b)``), constants
    drawn as plain numbers without a gradient.
    """
    order = root.topological_order()
    made = set()
    if forward is not None:
        reused = set()
        for f in [forward] if isinstance(forward, Node) else list(forward):
            reused.update(f.topological_order())
        made = {n for n in order if n._op is not None and n not in reused}
    names, ids = _fmt.node_names(order, param_names(params)), _fmt.node_ids(order)
    keep = set(order) if len(order) <= max_nodes else nearest_nodes(root, max_nodes)
    hidden = len(order) - len(keep)
    grads = show_grad and backward_ran(root)
    dot = _new_digraph(rankdir, format, title)
    if forward is not None:
        dot.node("legend", f"violet: the {len(made)} ops the chain rule made\\l"
                 "yellow: the forward pass, whose values it reuses\\l", shape="note",
                 style="filled", fillcolor="white", color="#64748b", fontsize="10",
                 id="legend")
    if hidden:
        dot.node("summary", f"… {hidden} more nodes\n(the {len(keep)} nearest the output "
                 "are drawn)", shape="note", style="dashed", color="#64748b", id="summary")
    for node in order:
        if node not in keep:
            continue
        nid = ids[node]
        _add_value_node(dot, node, root, nid, names[node], show_grad, rankdir, node in made)
        if node._op is not None:
            _add_op_node(dot, node, nid, node in made)
            _add_in_edges(dot, node, nid, keep, names, ids, grads)
    return dot


def _add_in_edges(dot: graphviz.Digraph, node: Any, nid: str, keep: set, names: dict,
                  ids: dict, grads: bool) -> None:
    local = local_values(node) if grads and node._op.kind != "tensor" else None
    from_summary = False
    for i, parent in enumerate(node._parents):
        if parent not in keep:
            from_summary = True
            continue
        flows = getattr(parent, "requires_grad", True) and not _fmt.is_constant(parent)
        label = edge_label(node, i, local, names) if grads and flows else ""
        dot.edge(ids[parent], f"{nid}_op", label=label, id=_fmt.edge_id(nid, i),
                 style="solid" if flows else "dotted",
                 tooltip=node._op.grad_texts[i] if i < len(node._op.grad_texts) else "")
    if from_summary:
        dot.edge("summary", f"{nid}_op", style="dashed", color="#94a3b8")


# ------------------------------------------------------------------ rendering
def _pipe(graph: graphviz.Digraph, format: str) -> bytes:
    if not dot_available():
        raise GraphvizNotFound("`dot` was not found on the PATH")
    try:
        return graph.pipe(format=format)
    except graphviz.ExecutableNotFound as exc:
        raise GraphvizNotFound(str(exc)) from None


def render_svg(graph: graphviz.Digraph) -> str:
    """The graph rendered to SVG text by ``dot`` (:class:`GraphvizNotFound` without it)."""
    return _pipe(graph, "svg").decode("utf-8")


def save(graph: graphviz.Digraph, path: str | Path) -> Path:
    """Write ``graph`` to ``path``; the suffix picks the format (.svg .png .pdf, .dot/.gv).

    ``.dot``/``.gv`` write the DOT source and need no Graphviz installation.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt in ("dot", "gv"):
        path.write_text(graph.source, encoding="utf-8")
        return path
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"unknown output format {path.suffix!r}: use .svg, .png, .pdf or .dot")
    path.write_bytes(_pipe(graph, fmt))
    return path


def mimebundle(node: Any) -> dict[str, str]:
    """What Jupyter shows for a node: its graph as SVG, or text (repr, hint, DOT) without dot."""
    graph = draw_graph(node)
    text = repr(node)
    if dot_available():
        try:
            return {"image/svg+xml": render_svg(graph), "text/plain": text}
        except (GraphvizNotFound, graphviz.CalledProcessError):
            pass
    return {
        "text/plain": f"{text}\n\n(no graph picture: {INSTALL_HINT})",
        "text/vnd.graphviz": graph.source,
    }


def notebook_repr(node: Any, mime_type: str) -> str | None:
    """One format of a node for Jupyter, made only when the front end asks for it:
    "image/svg+xml" renders the graph (runs ``dot``); "text/markdown" is the text and the
    install hint, given only where ``dot`` is missing.  Other formats: None."""
    if mime_type == "image/svg+xml":
        if not dot_available():
            return None
        try:
            return render_svg(draw_graph(node))
        except (GraphvizNotFound, graphviz.CalledProcessError):
            return None
    if mime_type == "text/markdown" and not dot_available():
        return f"`{node!r}`\n\n(no graph picture: {INSTALL_HINT})"
    return None
