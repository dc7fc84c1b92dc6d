"""Shared formatting: numbers, arrays and node names as the pictures and tables show them."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

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


def node_names(order: list) -> dict[Any, str]:
    """A display name per node: its label, or ``#k`` (k = position in topological order)."""
    names: dict[Any, str] = {}
    for k, node in enumerate(order):
        names[node] = node.label or f"#{k}"
    return names


def node_ids(order: list) -> dict[Any, str]:
    """Stable DOT/SVG ids per node (``n0``, ``n1``...), the same in graph and stepper."""
    return {node: f"n{k}" for k, node in enumerate(order)}


def edge_id(node_id: str, i: int) -> str:
    """The id of the edge from a node's i-th parent into its op."""
    return f"{node_id}_in{i}"


def wrap(name: str) -> str:
    """A name fit to follow ``∂`` or precede ``.grad``: ``x``, ``#3``, ``(x*w)``."""
    return name if is_simple(name) else f"({name})"


def is_simple(name: str) -> bool:
    """An ASCII identifier or ``#k``: safe to write next to other symbols."""
    return _SIMPLE_NAME.fullmatch(name) is not None


def count(n: int, word: str) -> str:
    """``1 step``, ``5 steps``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
