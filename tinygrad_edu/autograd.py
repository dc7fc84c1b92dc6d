"""The graph core shared by both engines: nodes, topological order, and the backward pass.

Every result of an operation is a :class:`Node` that remembers

* ``_parents`` -- the nodes it was computed from,
* ``_op``      -- the registry entry that computed it (``None`` for a leaf), and
* ``_ctx``     -- what that op saved for its backward (its parameters, or arrays).

``backward()`` walks the graph from the output towards the leaves in reverse topological
order.  At each node it asks the node's op for the gradient of every parent
(``upstream gradient x local gradient``, the chain rule) and *adds* it to the parent's
``.grad``: a node used twice (``a + a``, ``x * x``) receives both contributions.

What calling ``backward()`` twice does
--------------------------------------
Gradients of **leaves** accumulate, as in PyTorch: a second call adds the same gradient
again, so ``x.grad`` doubles.  Call ``zero_grad()`` on your leaves (or ``Module.zero_grad()``)
before each new backward pass.  Gradients of **intermediate** nodes are reset at the start
of every pass, so they always hold this pass's value and never leak into the next one
(the silent double-counting bug of naive engines).  The graph is kept after backward, so
calling it again is allowed.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

__all__ = ["GradMode", "Node", "enable_grad", "is_grad_enabled", "no_grad", "unbroadcast"]


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting added or stretched, back to ``shape``.

    When ``a`` of shape (3,) is added to ``b`` of shape (4, 3), ``a`` was used four times,
    so its gradient is the sum of the four rows of the upstream gradient (the chain rule's
    "branches sum").
    """
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    return g.sum(axis=axes).reshape(shape)


class GradMode:
    """Global switch: when ``enabled`` is False, ops record no graph (see :class:`no_grad`)."""

    enabled: bool = True


def is_grad_enabled() -> bool:
    """True when operations currently record the graph for backward."""
    return GradMode.enabled


class no_grad:
    """Context manager (and decorator) that disables graph recording.

    Inside ``with no_grad():`` every op returns a plain leaf with no parents: nothing is
    remembered for backward, which saves memory in evaluation loops and optimizer steps.
    """

    def __enter__(self) -> None:
        self._prev = GradMode.enabled
        GradMode.enabled = False

    def __exit__(self, *exc: object) -> None:
        GradMode.enabled = self._prev

    def __call__(self, fn):  # used as a decorator
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


class enable_grad(no_grad):
    """Context manager that re-enables graph recording inside a ``no_grad`` block."""

    def __enter__(self) -> None:
        self._prev = GradMode.enabled
        GradMode.enabled = True


class Node:
    """A node of the computation graph (base of :class:`Value` and :class:`Tensor`)."""

    __slots__ = ("_ctx", "_op", "_parents", "data", "grad", "label")

    # Set by each engine: the numeric backend its formulas run on, and what ``.grad``
    # holds before any gradient arrived (0.0 for Value, None for Tensor).
    _math: ClassVar[Any]
    _GRAD_INIT: ClassVar[Any]
    # Whether an input's gradient may need summing back to its shape (numpy broadcasting):
    # True for Tensor; False for Value, whose numbers never broadcast.
    _BROADCASTS: ClassVar[bool]
    _engine: ClassVar[type]  # the engine class results are made of (Value or Tensor)

    # ----------------------------------------------------------------- graph access
    @property
    def op(self):
        """The registry entry that produced this node, or None for a leaf."""
        return self._op

    @property
    def parents(self) -> tuple:
        """The nodes this one was computed from (empty for a leaf)."""
        return self._parents

    @property
    def ctx(self) -> Any:
        """What this node's op saved in its forward for its backward (None for a leaf).

        A :class:`~tinygrad_edu.registry.TensorOp`'s ``backward(node, g)`` reads its saved
        values here and its inputs in ``node.parents``."""
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        return self._op is None

    def topological_order(self) -> list[Node]:
        """All nodes this one depends on, each after all of its parents (self last).

        Iterative depth-first search with an explicit stack: linear in the graph size and
        safe for graphs of any depth (no ``RecursionError`` on a chain of a million ops).
        The stack is two parallel lists: the nodes being visited and, for each, an iterator
        over the parents it has not looked at yet.
        """
        order: list[Node] = []
        visited = {self}
        stack = [self]
        unvisited = [iter(self._parents)]
        while stack:
            for parent in unvisited[-1]:
                if parent not in visited:  # go deeper: the parent must come first
                    visited.add(parent)
                    stack.append(parent)
                    unvisited.append(iter(parent._parents))
                    break
            else:  # every parent is placed, so this node can be
                unvisited.pop()
                order.append(stack.pop())
        return order

    # ------------------------------------------------------------------- backward
    def _seed_gradient(self, gradient: Any) -> Any:  # pragma: no cover - per engine
        raise NotImplementedError

    def backward(self, gradient: Any = None, trace: bool = False) -> Any:
        """Backpropagate from this node: fill ``.grad`` of every node it depends on.

        ``gradient`` is d(something)/d(self); it defaults to 1 for a scalar.  Leaves'
        gradients accumulate across calls (see the module docstring); intermediates'
        are recomputed each call.  With ``trace=True`` the pass is also recorded step by
        step, printed, and returned (see :func:`tinygrad_edu.viz.explain_backward`).
        """
        if trace:
            from .viz.explain import explain_backward

            return explain_backward(self, gradient)
        self.run_backward(gradient)
        return None

    def run_backward(self, gradient: Any = None, on_edge: Callable | None = None) -> None:
        """The backward pass itself.  ``on_edge(node, i, upstream, grad)`` is called after
        the gradient ``grad`` of ``node``'s i-th parent was added to that parent's ``.grad``
        (used by the explainer; None in normal use).

        The cyclic garbage collector is paused during the pass and restored after it: the
        pass creates no reference cycles, but on a graph of a million nodes the collections
        triggered by its short-lived tuples would cost as much as the pass itself."""
        seed = self._seed_gradient(gradient)
        collecting = gc.isenabled()
        gc.disable()
        try:
            order = self.topological_order()
            init = self._GRAD_INIT
            for node in order:
                if node._op is not None:
                    node.grad = init
            current = self.grad
            self.grad = seed if current is None else current + seed
            self._propagate(order, on_edge)
        finally:
            if collecting:
                gc.enable()

    @staticmethod
    def _propagate(order: list[Node], on_edge: Callable | None) -> None:
        """Send each node's gradient to its parents, from the output back to the leaves."""
        for node in reversed(order):
            op = node._op
            if op is None:
                continue
            upstream = node.grad
            if upstream is None:
                continue
            i = 0  # the parent's position (a counter: cheaper than enumerate on hot paths)
            for parent, grad in zip(node._parents, op.backward(node, upstream)):
                if grad is not None:
                    if grad.__class__ is np.ndarray and grad.shape != parent.data.shape:
                        raise ValueError(
                            f"{op.name}: backward returned a gradient of shape {grad.shape} "
                            f"for input {i} of shape {parent.data.shape}"
                        )
                    current = parent.grad
                    parent.grad = grad if current is None else current + grad
                    if on_edge is not None:
                        on_edge(node, i, upstream, grad)
                i += 1  # noqa: SIM113

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        """Jupyter shows a node as its computation graph (SVG), or as text without Graphviz."""
        from .viz.graph import mimebundle

        return mimebundle(self)

    def zero_grad(self) -> None:
        """Forget this node's gradient (0.0 for a Value, None for a Tensor)."""
        self.grad = self._GRAD_INIT
