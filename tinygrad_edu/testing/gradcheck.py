"""Finite-difference gradient checking for functions of Values and Tensors.

``gradcheck(fn, inputs)`` computes the full Jacobian of ``fn`` twice -- analytically, with
one backward pass per output element, and numerically, with central differences
``(f(x + ε) − f(x − ε)) / 2ε`` per input element -- and compares them entry by entry.
Central differences have error O(ε²) plus rounding O(δ/ε); with float64 (δ ≈ 1e-16) and
ε = 1e-6 both are ≈ 1e-10, far below the default tolerances.  float32 inputs are refused:
at ε = 1e-6 their rounding error alone is ≈ 0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..autograd import Node, enable_grad, no_grad
from ..tensor import Tensor
from ..value import Value

__all__ = [
    "GradcheckError",
    "analytic_jacobian",
    "gradcheck",
    "numerical_grad",
    "numerical_jacobian",
]


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree; the message says where and by how much,
    the input's value there, and (when one can be found) the registry op whose local
    gradient disagrees with central differences of its own ``f``, with its formula.

    An ``AssertionError``: pytest shows the failing line, and hypothesis its "Falsifying
    example", as for a plain ``assert``."""


def _check_inputs(inputs: Sequence[Node], what: str) -> list[Node]:
    inputs = list(inputs)
    if not inputs:
        raise ValueError(f"{what}: no inputs given")
    for i, x in enumerate(inputs):
        if not isinstance(x, (Value, Tensor)):
            raise TypeError(f"{what}: input {i} is a {type(x).__name__}, not a Value or Tensor")
        if not x.is_leaf:
            raise ValueError(f"{what}: input {i} is not a leaf (it was computed by {x.op.name})")
        if isinstance(x, Tensor) and x.dtype != np.float64:
            raise TypeError(
                f"{what}: input {i} is {x.dtype}; gradient checks need float64 (central "
                "differences with eps=1e-6 are below float32 precision). Use "
                "Tensor(data, dtype=np.float64)"
            )
    return inputs


def _outputs(out: Any) -> list[Node]:
    """The function's result as a list of output nodes (a Value list counts as outputs)."""
    if isinstance(out, (Value, Tensor)):
        return [out]
    if isinstance(out, (list, tuple)) and out and all(isinstance(o, (Value, Tensor)) for o in out):
        return list(out)
    raise TypeError(f"gradcheck: fn must return a Value, a Tensor or a list of them, got {out!r}")


def _flat(outputs: list[Node]) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(o.data, dtype=np.float64)) for o in outputs])


def _elements(x: Node) -> range:
    return range(x.data.size) if isinstance(x, Tensor) else range(1)


def _shift(x: Node, j: int, delta: float) -> None:
    if isinstance(x, Tensor):
        x.data[np.unravel_index(j, x.data.shape)] += delta
    else:
        x.data += delta


def _element_label(x: Node, j: int) -> str:
    if not isinstance(x, Tensor):
        return "()"
    return str(tuple(int(i) for i in np.unravel_index(j, x.data.shape)))


def numerical_jacobian(fn: Callable, inputs: Sequence[Node], eps: float = 1e-6) -> list[np.ndarray]:
    """For each input, the central-difference Jacobian d out / d input (n_out × n_in)."""
    inputs = _check_inputs(inputs, "numerical_jacobian")
    jacobians = []
    with no_grad():
        for x in inputs:
            if isinstance(x, Tensor) and not x.data.flags.writeable:
                raise ValueError("numerical_jacobian: input array is read-only")
            columns = []
            for j in _elements(x):
                original = x.data[np.unravel_index(j, x.data.shape)] if isinstance(x, Tensor) else x.data
                _shift(x, j, eps)
                plus = _flat(_outputs(fn(*inputs)))
                _set(x, j, original)
                _shift(x, j, -eps)
                minus = _flat(_outputs(fn(*inputs)))
                _set(x, j, original)
                columns.append((plus - minus) / (2 * eps))
            jacobians.append(np.stack(columns, axis=1))
    return jacobians


def _set(x: Node, j: int, original: float) -> None:
    if isinstance(x, Tensor):
        x.data[np.unravel_index(j, x.data.shape)] = original
    else:
        x.data = original


def numerical_grad(fn: Callable, inputs: Sequence[Node], eps: float = 1e-6) -> list[Any]:
    """Central-difference gradient of a scalar-valued ``fn`` w.r.t. each input.

    Returns a float per Value input and an array of the input's shape per Tensor input.
    """
    inputs = _check_inputs(inputs, "numerical_grad")
    jacobians = numerical_jacobian(fn, inputs, eps)
    if jacobians[0].shape[0] != 1:
        raise ValueError(
            f"numerical_grad: fn must return a single number, it returned "
            f"{jacobians[0].shape[0]} (use numerical_jacobian)"
        )
    return [
        jac[0].reshape(x.data.shape) if isinstance(x, Tensor) else float(jac[0, 0])
        for x, jac in zip(inputs, jacobians)
    ]


@contextmanager
def _recording(inputs: Sequence[Node]) -> Iterator[None]:
    """Grad mode on and every Tensor input tracked while the block runs; both put back
    as they were afterwards."""
    saved = [getattr(x, "requires_grad", True) for x in inputs]
    try:
        with enable_grad():
            for x in inputs:
                if isinstance(x, Tensor):
                    x.requires_grad = True
            yield
    finally:
        for x, requires_grad in zip(inputs, saved):
            if isinstance(x, Tensor):
                x.requires_grad = requires_grad


def analytic_jacobian(fn: Callable, inputs: Sequence[Node]) -> list[np.ndarray]:
    """For each input, the Jacobian from backward passes (one per output element)."""
    inputs = _check_inputs(inputs, "analytic_jacobian")
    saved = [x.grad for x in inputs]
    try:
        with _recording(inputs):
            outputs = _outputs(fn(*inputs))
            n_out = _flat(outputs).size
            rows: list[list[np.ndarray]] = [[] for _ in inputs]
            for k in range(n_out):
                for x in inputs:
                    x.zero_grad()
                _backward_one_hot(outputs, k)
                for i, x in enumerate(inputs):
                    rows[i].append(_grad_as_flat(x))
            return [np.stack(r, axis=0) for r in rows]
    finally:
        for x, grad in zip(inputs, saved):
            x.grad = grad


def _backward_one_hot(outputs: list[Node], k: int) -> None:
    """Backpropagate the k-th output element alone (cotangent = one-hot)."""
    for out in outputs:
        size = out.data.size if isinstance(out, Tensor) else 1
        if k < size:
            if isinstance(out, Tensor):
                if not out.requires_grad:
                    return  # output does not depend on any input: zero row
                seed = np.zeros(out.data.shape)
                seed.reshape(-1)[k] = 1.0
                out.backward(seed)
            else:
                out.backward()
            return
        k -= size


def _grad_as_flat(x: Node) -> np.ndarray:
    if x.grad is None:
        return np.zeros(x.data.size)
    return np.ravel(np.asarray(x.grad, dtype=np.float64))


def gradcheck(
    fn: Callable,
    inputs: Sequence[Node],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
) -> bool:
    """Check ``fn``'s backward against central differences for every input; True if it agrees.

    ``fn(*inputs)`` returns a Value, a Tensor, or a list of Values.  Inputs are leaf Values
    or float64 Tensors.  An entry passes when ``|analytic − numerical| <= atol + rtol·|numerical|``;
    otherwise :class:`GradcheckError` names the input, the element, the output element, and
    both values (the worst mismatch of that input, and how many entries failed).
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this function's
    inputs = _check_inputs(inputs, "gradcheck")
    analytic = analytic_jacobian(fn, inputs)
    numeric = numerical_jacobian(fn, inputs, eps)
    for i, (x, a, n) in enumerate(zip(inputs, analytic, numeric)):
        if a.shape != n.shape:
            raise GradcheckError(
                f"gradcheck: input {i}: analytic Jacobian has shape {a.shape}, numerical {n.shape}"
            )
        excess = np.abs(a - n) - (atol + rtol * np.abs(n))
        bad = excess > 0
        if bad.any() or not np.all(np.isfinite(a)):
            k, j = np.unravel_index(int(np.nanargmax(np.where(np.isfinite(a), excess, np.inf))),
                                    a.shape)
            name = f" ({x.label!r})" if x.label else ""
            value = float(np.ravel(np.asarray(x.data, dtype=np.float64))[j])
            raise GradcheckError(
                f"gradcheck failed for input {i}{name} of {type(x).__name__} shape "
                f"{np.shape(x.data)}: element {_element_label(x, j)} (value {value:.10g}), "
                f"output element {k}: "
                f"analytic {a[k, j]:.10g} vs numerical {n[k, j]:.10g} "
                f"(|diff| {abs(a[k, j] - n[k, j]):.3g} > atol {atol:g} + rtol {rtol:g}·|numerical|); "
                f"{int(bad.sum())} of {bad.size} Jacobian entries differ"
                + _suspect(fn, inputs, eps, atol, rtol)
            )
    return True


# ------------------------------------------------------------------ which op is wrong
def _suspect(fn: Callable, inputs: list[Node], eps: float, atol: float, rtol: float) -> str:
    """``"; suspect: op 'cube' ..."``: the first op of ``fn``'s graph (from the inputs on)
    whose local gradient disagrees with central differences of its own forward, at the
    values that op saw; "" when every op agrees (or none can be checked)."""
    try:
        with _recording(inputs):
            seen: set[int] = set()
            for out in _outputs(fn(*inputs)):
                for node in out.topological_order():
                    if node._op is None or id(node) in seen:
                        continue
                    seen.add(id(node))
                    found = _check_op(node, eps, atol, rtol)
                    if found:
                        return "; suspect: " + found
    except Exception:  # noqa: BLE001 - only a hint: never hide the real failure
        return ""
    return ""


def _check_op(node: Node, eps: float, atol: float, rtol: float) -> str:
    """Compare one elementwise node's local gradients with central differences of the op's
    ``f`` at the node's inputs; a description of the first disagreement, or ""."""
    op, m = node._op, node._math
    if op.kind == "tensor":
        return _check_tensor_op(node, eps, atol, rtol)
    args = [p.data for p in node._parents]
    params = node._ctx if op.kind == "unary" and node._ctx else {}
    local = op.local(node)
    names = ("x",) if op.kind == "unary" else ("a", "b")
    for i, (want, name) in enumerate(zip(local, names)):
        def at(delta: float, i: int = i) -> Any:
            shifted = [a + delta if k == i else a for k, a in enumerate(args)]
            return op.f(m, *shifted, **params)

        numeric = np.asarray((at(eps) - at(-eps)) / (2 * eps), dtype=np.float64)
        got = np.broadcast_to(np.asarray(want, dtype=np.float64), numeric.shape)
        bad = np.abs(got - numeric) > atol + rtol * np.abs(numeric)
        if bad.any():
            e = np.unravel_index(int(np.argmax(bad)), bad.shape) if bad.ndim else ()
            here = np.broadcast_to(np.asarray(args[i], dtype=np.float64), numeric.shape)[e]
            where = f" element {tuple(int(v) for v in e)}" if e else ""
            return (f"op {op.name!r} (f = {op.f_text}; {op.grad_texts[i]}): its local "
                    f"gradient at {name} = {here:.6g}{where} is {got[e]:.6g}, central "
                    f"differences of its f give {numeric[e]:.6g}")
    return ""


def _check_tensor_op(node: Node, eps: float, atol: float, rtol: float) -> str:
    """A tensor op's backward for one random upstream u against central differences of
    ``u · forward`` (small inputs, ops without parameters: those are not kept on the node)."""
    op = node._op
    arrays = [np.array(p.data, dtype=np.float64) for p in node._parents]
    if op.params or sum(a.size for a in arrays) > 256:
        return ""
    u = np.random.default_rng(0).standard_normal(np.shape(node.data))
    grads = op.backward(node, u)
    for i, g in enumerate(grads):
        if g is None:
            continue
        for j in range(arrays[i].size):
            sums = []
            for delta in (eps, -eps):
                shifted = [a.copy() for a in arrays]
                shifted[i].reshape(-1)[j] += delta
                sums.append(float(np.sum(u * op.forward(*shifted)[0])))
            numeric, got = (sums[0] - sums[1]) / (2 * eps), float(np.ravel(g)[j])
            if abs(got - numeric) > atol + rtol * abs(numeric):
                e = tuple(int(v) for v in np.unravel_index(j, arrays[i].shape))
                text = op.grad_texts[i] if i < len(op.grad_texts) else ""
                return (f"op {op.name!r} (f = {op.f_text}; {text}): its backward gives input "
                        f"{i} element {e} (value {arrays[i][e]:.6g}) the gradient {got:.6g} "
                        f"for a random upstream, central differences of its forward "
                        f"give {numeric:.6g}")
    return ""
