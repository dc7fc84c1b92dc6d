"""Second-order gradient checking: the gradient of the gradient against finite differences.

``gradgradcheck(fn, inputs)`` differentiates ``fn`` once with
:func:`tinygrad_edu.grad` (``create_graph=True``): the first derivative

    G(inputs, v) = ∂/∂inputs ⟨v, fn(inputs)⟩       (v: fixed random grad_outputs)

is a function of the inputs (and linear in v) built of graph nodes.  Its Jacobian is then
checked by :func:`~tinygrad_edu.testing.gradcheck` -- analytically, by backpropagating
through the recorded backward graph, and numerically, by central differences of the
analytic first derivative -- with respect to the inputs and to v.  For a scalar ``fn``
the rows with respect to the inputs are the Hessian; for a tensor op they are
Hessian-vector products ∂/∂x ⟨v, J(x)·⟩.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..autograd import GradMode, Node, enable_grad
from ..higher_order import grad
from ..tensor import Tensor
from ..value import Value
from .gradcheck import GradcheckError, _check_inputs, _outputs, gradcheck

__all__ = ["gradgradcheck"]


def _grad_outputs(outputs: list[Node], rng: np.random.Generator) -> list[Node]:
    """A random v per output (a float64 Tensor, or a Value), away from zero."""
    vs: list[Node] = []
    for out in outputs:
        if isinstance(out, Tensor):
            v = rng.uniform(0.5, 1.5, out.data.shape) * rng.choice([-1.0, 1.0], out.data.shape)
            vs.append(Tensor(v, dtype=np.float64, requires_grad=True))
        else:
            vs.append(Value(float(rng.uniform(0.5, 1.5))))
    return vs


def first_derivative(fn: Callable, n_inputs: int) -> Callable:
    """``G(*inputs, *v)``: the gradient of ⟨v, fn(inputs)⟩ w.r.t. the inputs, as a list of
    nodes.  Recorded as a graph when grad mode is on (the analytic check), computed plainly
    under ``no_grad`` (the finite differences evaluate it there)."""

    def g(*args: Node) -> list[Node]:
        inputs, vs = list(args[:n_inputs]), list(args[n_inputs:])
        record = GradMode.enabled
        with enable_grad():
            outs = _outputs(fn(*inputs))
            grads = grad(outs, inputs, grad_outputs=vs, create_graph=record, allow_unused=True)
        return [_zero_like(x) if gx is None else gx for x, gx in zip(inputs, grads)]

    return g


def _zero_like(x: Node) -> Node:
    return Tensor(np.zeros_like(x.data)) if isinstance(x, Tensor) else Value(0.0)


def gradgradcheck(
    fn: Callable,
    inputs: Sequence[Node],
    grad_outputs: Sequence[Node] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check ``fn``'s second derivatives (through ``create_graph=True``) against central
    differences of its analytic first derivative; True if they agree.

    Inputs as for :func:`gradcheck` (leaf Values or float64 Tensors).  ``grad_outputs``
    (the v of ⟨v, fn⟩, one per output) is drawn from ``seed`` when not given.  On a
    mismatch :class:`GradcheckError` names the input, the element and both values, as
    gradcheck does; inputs numbered past ``fn``'s own are the grad_outputs.
    """
    inputs = _check_inputs(inputs, "gradgradcheck")
    with enable_grad():
        outputs = _outputs(fn(*inputs))
    vs = list(grad_outputs) if grad_outputs is not None else \
        _grad_outputs(outputs, np.random.default_rng(seed))
    if len(vs) != len(outputs):
        raise ValueError(f"gradgradcheck: {len(vs)} grad_outputs for {len(outputs)} outputs")
    try:
        return gradcheck(first_derivative(fn, len(inputs)), [*inputs, *vs], eps=eps,
                         atol=atol, rtol=rtol)
    except GradcheckError as exc:
        raise GradcheckError(f"gradgradcheck (the gradient of the gradient): {exc}") from None

