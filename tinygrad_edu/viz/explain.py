"""The backward pass, step by step: upstream × local = contribution, and the running sum.

>>> from tinygrad_edu import Value
>>> x, w = Value(2.0, label="x"), Value(-3.0, label="w")
>>> y = x * w; y.label = "y"
>>> trace = explain_backward(y, print_steps=False)
>>> [(s.parent, s.upstream, s.local, s.contribution) for s in trace.steps]
[('x', 1.0, -3.0, -3.0), ('w', 1.0, 2.0, 2.0)]

The explainer does not re-implement backpropagation: it runs the engine's own backward
loop (:meth:`~tinygrad_edu.autograd.Node.run_backward`) and records every edge the loop
processes, in the order it processes them, through the ``on_edge`` hook.  The local
gradient's *value* comes from the registry (``op.local(node)``) for elementwise ops; tensor
ops (matmul, sum, softmax...) show their formula, and the contribution they computed.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _fmt
from .graph import named_formula, param_names

__all__ = ["BackwardTrace", "Step", "explain_backward", "reduction_axes"]


@dataclass
class Step:
    """One edge of the backward pass: gradient flowing from ``node`` into one parent.

    Numbers are floats for Values and numpy arrays for Tensors.  ``local`` is None for
    tensor ops (see ``formula``).  ``contribution`` is what was added to the parent's
    ``.grad`` (already summed over broadcast axes); ``total`` the parent's ``.grad`` right
    after the addition.  ``reduction`` describes the broadcast reduction, if any.
    """

    index: int
    node: str
    op: str
    symbol: str
    parent: str
    parent_index: int
    formula: str
    upstream: Any
    local: Any
    contribution: Any
    total: Any
    previous: Any
    reduction: str = ""
    node_id: str = ""
    parent_id: str = ""
    edge_id: str = ""
    elementwise: bool = True
    #: ``formula`` with a binary op's ``a``/``b`` replaced by the inputs' names (x · w)
    named_formula: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (arrays as shape, norm, and values when small)."""
        d = {k: getattr(self, k) for k in ("index", "node", "op", "symbol", "parent",
                                            "parent_index", "formula", "reduction", "node_id",
                                            "parent_id", "edge_id", "elementwise")}
        for key in ("upstream", "local", "contribution", "total", "previous"):
            d[key] = _jsonable(getattr(self, key))
        return d


def _jsonable(x: Any) -> Any:
    if x is None:
        return None
    if not _fmt.is_array(x):
        return float(x)
    out: dict[str, Any] = {"shape": list(x.shape), "norm": _fmt.norm(x)}
    if x.size <= _fmt.SMALL:
        out["values"] = np.asarray(x, dtype=np.float64).tolist()
    return out


def reduction_axes(big: tuple, small: tuple) -> tuple[int, ...]:
    """The axes of ``big`` that broadcasting stretched and the gradient is summed over."""
    lead = len(big) - len(small)
    return tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(small) if n == 1 and big[lead + i] != 1
    )


def _reduction_text(big: tuple, small: tuple) -> str:
    """``"(32, 10) summed over axis 0 → (10,)"``, or "" when no reduction happened."""
    if big == small:
        return ""
    axes = reduction_axes(big, small)
    word = "axis" if len(axes) == 1 else "axes"
    which = ", ".join(str(a) for a in axes)
    return f"{_fmt.shape_text(big)} summed over {word} {which} → {_fmt.shape_text(small)}"


@dataclass
class BackwardTrace:
    """The recorded backward pass: ``steps`` in execution order, plus the graph's root."""

    root: Any
    root_name: str
    seed: Any
    steps: list[Step] = field(default_factory=list)
    #: each node's gradient before the pass, by node id (leaves may hold earlier passes')
    initial: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------ text
    def rows(self) -> list[list[str]]:
        """The table as strings: one row per step (header first)."""
        header = ["#", "edge", "op", "upstream", "×", "local", "=", "contribution",
                  "parent total", "local gradient formula"]
        rows = [header]
        for s in self.steps:
            local = _fmt.brief(s.local) if s.local is not None else "(formula)"
            formula = (s.named_formula or s.formula) + (f"; {s.reduction}" if s.reduction else "")
            rows.append([str(s.index), f"{s.node} → {s.parent}", s.symbol, _fmt.brief(s.upstream),
                         "×", local, "=", _fmt.brief(s.contribution),
                         f"{_fmt.wrap(s.parent)}.grad = {_fmt.brief(s.total)}", formula])
        return rows

    def __str__(self) -> str:
        rows = self.rows()
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        lines = [(f"backward from {self.root_name} (seed gradient {_fmt.brief(self.seed)}), "
                 f"{_fmt.count(len(self.steps), 'step')}: upstream × local = contribution, added to the "
                 "parent's grad")]
        for k, row in enumerate(rows):
            cells = [cell.rjust(w) if c in (0, 3, 5, 7) else cell.ljust(w)
                     for c, (cell, w) in enumerate(zip(row, widths))]
            lines.append("  ".join(cells).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __repr__(self) -> str:
        """The table: what a terminal (Python, IPython) shows when the trace is echoed."""
        return str(self)

    # ------------------------------------------------------------ other formats
    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root_name, "seed": _jsonable(self.seed),
                "steps": [s.to_dict() for s in self.steps]}

    def to_json(self, indent: int | None = 2) -> str:
        """The trace as JSON (arrays as shape, Frobenius norm, and values when small)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_html(self) -> str:
        """The step table as an HTML ``<table>`` (no graph; see the stepper for that)."""
        rows = self.rows()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
        body = "\n".join(
            f'<tr data-step="{r[0]}">' + "".join(f"<td>{html.escape(c)}</td>" for c in r)
            + "</tr>"
            for r in rows[1:]
        )
        return (f'<table class="backward-trace">\n<thead><tr>{head}</tr></thead>\n'
                f"<tbody>\n{body}\n</tbody>\n</table>")

    def _repr_html_(self) -> str:
        """The table as HTML: what a notebook shows (once) when the trace is a cell's value."""
        return self.to_html()


def _copy(x: Any) -> Any:
    return np.array(x, copy=True) if isinstance(x, np.ndarray) else x


class _Recorder:
    """The ``on_edge`` callback: turns each processed edge into a :class:`Step`."""

    def __init__(self, order: list, params: dict[int, str] | None = None) -> None:
        self.names = _fmt.node_names(order, params)
        self.ids = _fmt.node_ids(order)
        self.steps: list[Step] = []
        self._local: dict[int, tuple | None] = {}
        # each node's .grad before its next contribution: leaves keep what earlier backward
        # passes accumulated; intermediates start from nothing (run_backward resets them)
        self.last: dict[Any, Any] = {
            n: _copy(n.grad) if n._op is None else n._GRAD_INIT for n in order
        }
        self.initial = {self.ids[n]: g for n, g in self.last.items()}

    def local(self, node: Any) -> tuple | None:
        key = id(node)
        if key not in self._local:
            self._local[key] = None if node._op.kind == "tensor" else node._op.local(node)
        return self._local[key]

    def __call__(self, node: Any, i: int, upstream: Any, grad: Any) -> None:
        op, parent = node._op, node._parents[i]
        if _fmt.is_constant(parent):  # the 2 of 2*x: a number, not something to learn
            return
        local = self.local(node)
        local_i = None if local is None else local[i]
        copy = _copy(parent.grad)
        previous, self.last[parent] = self.last[parent], copy
        reduction = ""
        if local_i is not None and isinstance(upstream, np.ndarray):
            big = np.broadcast_shapes(np.shape(upstream), np.shape(local_i))
            reduction = _reduction_text(big, parent.data.shape)
        nid = self.ids[node]
        self.steps.append(Step(
            index=len(self.steps) + 1, node=self.names[node], op=op.name, symbol=op.symbol,
            parent=self.names[parent], parent_index=i,
            formula=op.grad_texts[i] if i < len(op.grad_texts) else "",
            upstream=upstream, local=local_i, contribution=grad, total=copy,
            previous=previous, reduction=reduction, node_id=nid, parent_id=self.ids[parent],
            edge_id=_fmt.edge_id(nid, i), elementwise=local_i is not None,
            named_formula=named_formula(node, i, self.names),
        ))


def explain_backward(root: Any, gradient: Any = None, print_steps: bool = False,
                     params: dict[str, Any] | None = None) -> BackwardTrace:
    """Run ``root``'s backward pass and record it step by step.

    Exactly the gradients of ``root.backward(gradient)`` are computed (same loop, same
    accumulation); in addition every edge becomes a :class:`Step`.  Returns one
    :class:`BackwardTrace`, which shows itself: the aligned table in a terminal
    (``repr``/``print``), the same table as HTML in a notebook (``_repr_html_``).  Nothing is
    printed unless ``print_steps`` (the command line's ``explain`` prints).
    ``trace.to_json()`` and :func:`~tinygrad_edu.viz.write_stepper_html` give other views.
    ``params`` (``dict(model.named_parameters())``) names unlabelled tensors, as in
    :func:`~tinygrad_edu.viz.draw_graph`.
    """
    order = root.topological_order()
    recorder = _Recorder(order, param_names(params))
    root.run_backward(gradient, on_edge=recorder)
    seed = root._seed_gradient(gradient) if gradient is not None else root.grad
    if isinstance(seed, np.ndarray):
        seed = np.array(seed, copy=True)
    trace = BackwardTrace(root=root, root_name=recorder.names[root], seed=seed,
                          steps=recorder.steps, initial=recorder.initial)
    if print_steps:
        print(trace)
    return trace
