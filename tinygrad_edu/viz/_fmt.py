"""Shared formatting: numbers, arrays and node names as the pictures and tables show them."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..autograd import ConstantLabel

_SIMPLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|#\d+")

#: Arrays with at most this many elements are shown value by value.
SMALL = 6


def num(x: Any) -> str:
    """A number in 4 significant digits: ``-3``, ``0.7071``, ``1.2e-05``."""
    x = float(x)
    if x == 0:
        return "0"
    return f"{x:.4g}"


def is_array(x: Any) -> bool:
    """True for a numpy array or numpy scalar of more than zero dimensions."""
    return isinstance(x, np.ndarray) and x.ndim > 0


def shape_text(shape: tuple) -> str:
    """``(32, 10)``; ``()`` for a scalar."""
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def values_text(a: np.ndarray) -> str:
    """The values of a small array: ``[1, 2.5]`` or ``[[1, 2], [3, 4]]``."""
    if a.ndim == 0:
        return num(a)
    return "[" + ", ".join(values_text(row) for row in a) + "]"


def norm(a: Any) -> float:
    """The Frobenius norm (the absolute value for a number)."""
    return float(np.sqrt(np.sum(np.square(np.asarray(a, dtype=np.float64)))))


def array_summary(a: Any) -> str:
    """Values when small (≤ SMALL elements), else ``min/mean/max``."""
    a = np.asarray(a)
    if a.size <= SMALL:
        return values_text(a)
    return f"min {num(a.min())}  mean {num(a.mean())}  max {num(a.max())}"


def brief(x: Any) -> str:
    """One number, or a small array's values, or a big array's shape and norm."""
    if x is None:
        return "—"
    if not is_array(x):
        return num(x)
    if x.size <= SMALL:
        return values_text(x)
    return f"{shape_text(x.shape)} ‖·‖={num(norm(x))}"


def short_formula(text: str, limit: int = 14) -> str:
    """The right-hand side of ``"f'(x) = 1 − y²"`` when it is short, else ``""``."""
    rhs = text.split("=", 1)[1].strip() if "=" in text else text.strip()
    rhs = rhs.split("  ")[0].strip()
    return rhs if len(rhs) <= limit else ""


def node_names(order: list, params: dict[int, str] | None = None) -> dict[Any, str]:
    """A display name per node: its label; a parameter's name from ``params`` (``id(node)``
    → name, as ``dict(model.named_parameters())`` gives); a constant's value (``3``); an op
    result's short expression built from its parents' names (``tanh(x*w + b)``, long parts
    elided to ``…``); else ``#k`` (k = position in topological order)."""
    names: dict[Any, str] = {}
    for k, node in enumerate(order):
        if node.label:
            names[node] = node.label
        elif params and id(node) in params:
            names[node] = params[id(node)]
        elif is_constant(node):
            names[node] = num(node.data) if np.ndim(node.data) == 0 else f"#{k}"
        elif node._op is not None:  # the output (last) may be longer: it heads the table
            limit = 2 * NAME_LIMIT if k == len(order) - 1 else NAME_LIMIT
            names[node] = expression_name(node, names, limit) or f"#{k}"
        else:
            names[node] = f"#{k}"
    return names


def is_constant(node: Any) -> bool:
    """A number written into an expression (``2 * x``): a leaf the engine made from it, or a
    tensor leaf that takes no gradient and holds one number."""
    if node._op is not None:
        return False
    if isinstance(node.label, ConstantLabel):
        return True
    return not getattr(node, "requires_grad", True) and np.ndim(node.data) == 0


#: Longest name a node gets from its expression; beyond it, long parts elide to ``…``.
NAME_LIMIT = 28
_BINARY_TEXT = {"add": (" + ", 1), "sub": (" - ", 1), "mul": ("*", 2), "div": ("/", 2),
                "pow": ("**", 3), "matmul": (" @ ", 2)}


def precedence(text: str) -> int:
    """How tightly a written expression binds: 1 for a top-level ``+``/``-``, 2 for
    ``*``/``/``/``@`` (and ``·×÷``), 3 for ``**``/``^``, 4 for a name, number or call."""
    depth, level, i = 0, 4, 0
    while i < len(text):
        c = text[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and i > 0:
            if text.startswith((" + ", " - ", " − "), i):
                return 1
            if text.startswith("**", i) or c == "^":
                level, i = min(level, 3), i + (c == "*")
            elif c in "*/@·×÷":
                level = min(level, 2)
        i += 1
    return level


def _operand(name: str, level: int, right: bool = False) -> str:
    """``name`` in parentheses where it binds less tightly than the operator around it."""
    p = precedence(name)
    return f"({name})" if p < level or (right and p == level and level < 4) else name


def expression_name(node: Any, names: dict, limit: int = NAME_LIMIT) -> str:
    """The short expression of an op node from its parents' names: ``x*w + b``; parts
    longer than 10 characters become ``…`` when the whole would exceed ``limit``."""
    parts = [names[p] for p in node._parents]
    full = _compose(node, parts)
    if len(full) <= limit:
        return full
    return _compose(node, [p if len(p) <= 10 else "…" for p in parts])


def _compose(node: Any, parts: list[str]) -> str:
    op = node._op
    if op.name in _BINARY_TEXT and len(parts) == 2:
        sym, level = _BINARY_TEXT[op.name]
        right = op.name in ("sub", "div") or op.name == "pow"
        left_level = level + 1 if op.name == "pow" else level
        return _operand(parts[0], left_level) + sym + _operand(parts[1], level, right)
    params = node._ctx if op.kind == "unary" and isinstance(node._ctx, dict) else {}
    if op.name == "pow_const":
        return f"{_operand(parts[0], 4)}**{num(params.get('p', 2.0))}"
    if op.name == "neg":
        return f"-{_operand(parts[0], 3)}"
    extra = [f"{k}={v}" if isinstance(v, str) else f"{k}={num(v)}" for k, v in params.items()
             if isinstance(v, (int, float, str)) and v != op.params.get(k)]
    return f"{op.name}({', '.join(parts + extra)})"


def node_ids(order: list) -> dict[Any, str]:
    """Stable DOT/SVG ids per node (``n0``, ``n1``...), the same in graph and stepper."""
    return {node: f"n{k}" for k, node in enumerate(order)}


def edge_id(node_id: str, i: int) -> str:
    """The id of the edge from a node's i-th parent into its op."""
    return f"{node_id}_in{i}"


def wrap(name: str) -> str:
    """A name fit to follow ``∂`` or precede ``.grad``: ``x``, ``#3``, ``tanh(x)``,
    ``(x*w)``: in parentheses unless it is a name, a number or a call."""
    if is_simple(name):
        return name
    return name if precedence(name) == 4 and not name.startswith(("-", "…")) else f"({name})"


def is_simple(name: str) -> bool:
    """An ASCII identifier or ``#k``: safe to write next to other symbols."""
    return _SIMPLE_NAME.fullmatch(name) is not None


def count(n: int, word: str) -> str:
    """``1 step``, ``5 steps``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
