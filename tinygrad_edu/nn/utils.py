"""Gradient tools for training: clipping, flattening, and a gradient-norm report per layer.

The names are PyTorch's (``torch.nn.utils``)::

    loss.backward()
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    print(nn.utils.grad_norms(model))      # one line per layer: is the gradient flowing?
    optimizer.step()

Norms, for the gradients ``g₁ … gₖ`` of all parameters taken as one long vector ``g``:

* ``p``-norm:  ``‖g‖_p = (Σᵢ |gᵢ|^p)^(1/p)`` (``p = 2``: the Euclidean length);
* ``inf``-norm: ``‖g‖_∞ = maxᵢ |gᵢ|``.

:func:`clip_grad_norm_` rescales ``g`` to length ``max_norm`` when it is longer:
``g ← g · max_norm / (‖g‖ + 1e-6)`` if that factor is below 1 (the direction is kept, only
the step shrinks).  :func:`clip_grad_value_` clips every entry to ``[-c, c]`` instead (the
direction changes).  A gradient that vanishes layer by layer (a deep sigmoid net) or
explodes (a learning rate far too high) shows in :func:`grad_norms` as norms that fall or
rise by orders of magnitude from the last layer to the first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autograd import Node
from .module import Module

__all__ = [
    "GradNormRecorder",
    "GradNorms",
    "clip_grad_norm_",
    "clip_grad_value_",
    "grad_norms",
    "parameters_to_vector",
    "vector_to_parameters",
]


def _as_list(parameters: Node | Iterable[Node]) -> list[Node]:
    """A single tensor or an iterable of them (``model.parameters()``) as a list."""
    if isinstance(parameters, Node):
        return [parameters]
    params = list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Node):
            raise TypeError(f"parameter {i} is a {type(p).__name__}, not a Tensor or Value")
    return params


def _norm(arrays: list[np.ndarray], norm_type: float) -> float:
    """``‖g‖_p`` of the arrays taken together as one vector (p = inf: the largest |gᵢ|)."""
    if not arrays:
        return 0.0
    if norm_type == math.inf:
        return float(max(np.max(np.abs(a)) if a.size else 0.0 for a in arrays))
    if norm_type == 2.0:  # the common case, without the power's rounding
        return float(math.sqrt(sum(float(np.dot(a.ravel(), a.ravel())) for a in arrays)))
    total = sum(float(np.sum(np.abs(a) ** norm_type)) for a in arrays)
    return float(total ** (1.0 / norm_type))


def _grad_array(p: Node) -> np.ndarray:
    return np.asarray(p.grad, dtype=np.float64)


def clip_grad_norm_(
    parameters: Node | Iterable[Node],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Rescale the gradients together so that their total norm is at most ``max_norm``.

    ``total = ‖(g₁, …, gₖ)‖_p`` over every parameter that has a gradient; when
    ``c = max_norm / (total + 1e-6) < 1`` each gradient becomes ``c · gᵢ`` (a new array:
    the old one is not written to).  Returns ``total``, the norm *before* clipping (log it:
    it is the best single number for spotting an exploding gradient).

    A NaN or infinite total raises ``RuntimeError`` with ``error_if_nonfinite=True``;
    otherwise the gradients are left unchanged (``c`` is not a number) and the total is
    returned for you to see.
    """
    if not max_norm > 0:  # inf is allowed: only measures the norm
        raise ValueError(f"clip_grad_norm_: max_norm must be positive, got {max_norm}")
    if norm_type != math.inf and not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
    params = [p for p in _as_list(parameters) if p.grad is not None]
    total = _norm([_grad_array(p) for p in params], float(norm_type))
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise RuntimeError(
                f"clip_grad_norm_: the total {norm_type}-norm of the gradients is {total}; "
                "some gradient holds NaN or inf (find the op with tinygrad_edu.detect_anomaly())"
            )
        return total
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in params:
            g = p.grad
            p.grad = g * coef if isinstance(g, np.ndarray) else float(g) * coef
            if isinstance(g, np.ndarray):
                p.grad = p.grad.astype(g.dtype, copy=False)
    return total


def clip_grad_value_(parameters: Node | Iterable[Node], clip_value: float) -> None:
    """Clip every gradient entry to ``[-clip_value, clip_value]`` (new arrays, in the
    gradients' dtype)."""
    if not clip_value > 0:
        raise ValueError(f"clip_grad_value_: clip_value must be positive, got {clip_value}")
    for p in _as_list(parameters):
        g = p.grad
        if g is None:
            continue
        if isinstance(g, np.ndarray):
            p.grad = np.clip(g, -clip_value, clip_value).astype(g.dtype, copy=False)
        else:
            p.grad = min(max(float(g), -clip_value), clip_value)


def parameters_to_vector(parameters: Node | Iterable[Node]) -> np.ndarray:
    """All parameters' values as one flat float64 vector, in order (a copy)."""
    params = _as_list(parameters)
    if not params:
        return np.zeros(0)
    return np.concatenate([np.asarray(p.data, dtype=np.float64).ravel() for p in params])


def vector_to_parameters(vec: Any, parameters: Node | Iterable[Node]) -> None:
    """Write ``vec`` back into the parameters, in order, in place (the inverse of
    :func:`parameters_to_vector`; an optimizer holding them keeps working).  Its length
    must be the total number of parameter values."""
    params = _as_list(parameters)
    vec = np.asarray(vec.data if isinstance(vec, Node) else vec)
    need = sum(int(np.size(p.data)) for p in params)
    if vec.ndim != 1 or vec.size != need:
        raise ValueError(
            f"vector_to_parameters: expected a vector of {need} values, got shape {vec.shape}"
        )
    start = 0
    for p in params:
        n = int(np.size(p.data))
        chunk = vec[start:start + n]
        if isinstance(p.data, np.ndarray):
            p.data[...] = chunk.reshape(p.data.shape)
        else:
            p.data = float(chunk[0])
        start += n


@dataclass
class GradNorms:
    """The gradients' 2-norms of one backward pass, per parameter and per layer.

    ``per_parameter`` maps a parameter's name (``"layers.0.weight"``) to ``‖grad‖₂``;
    ``per_layer`` maps a layer (the module path, ``"layers.0"``) to the 2-norm of all its
    parameters' gradients together, ``sqrt(Σ ‖gᵢ‖₂²)``, in the model's order (input side
    first).  ``without_grad`` lists the parameters that got no gradient (not used in the
    forward, frozen, or backward not called yet); they are in neither dict.  ``str()`` is a
    table, one line per layer.
    """

    per_parameter: dict[str, float] = field(default_factory=dict)
    per_layer: dict[str, float] = field(default_factory=dict)
    without_grad: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """The 2-norm of all gradients together (what :func:`clip_grad_norm_` returns)."""
        return math.sqrt(sum(v * v for v in self.per_parameter.values()))

    def __str__(self) -> str:
        layers: dict[str, list[str]] = {}
        for name in self.sizes:
            layers.setdefault(_layer_of(name), []).append(name)
        width = max([len("layer"), *(len(k) for k in layers)])
        lines = [f"{'layer':<{width}}  {'params':>9}  {'grad norm':>10}  parameters"]
        for layer, names in layers.items():
            size = sum(self.sizes[n] for n in names)
            norm = f"{self.per_layer[layer]:10.3e}" if layer in self.per_layer else "   no grad"
            parts = []
            for n in names:
                short = n[len(layer) + 1:] if layer else n
                value = self.per_parameter.get(n)
                parts.append(f"{short} {'no grad' if value is None else f'{value:.2e}'}")
            lines.append(f"{layer or '(model)':<{width}}  {size:>9,}  {norm}  {', '.join(parts)}")
        lines.append(f"{'total':<{width}}  {sum(self.sizes.values()):>9,}  {self.total:10.3e}")
        return "\n".join(lines)


def _layer_of(name: str) -> str:
    """The module path of a parameter name: ``"layers.0.weight"`` → ``"layers.0"``."""
    return name.rpartition(".")[0]


def grad_norms(model: Module | Mapping[str, Node]) -> GradNorms:
    """The 2-norm of every parameter's gradient and of every layer's, after ``backward()``.

    ``model`` is a :class:`~tinygrad_edu.nn.Module` (its ``named_parameters()``) or a
    mapping from names to tensors.  See :class:`GradNorms`."""
    if isinstance(model, Module):
        named = list(model.named_parameters())
    elif isinstance(model, Mapping):
        named = list(model.items())
    else:
        raise TypeError(f"grad_norms: expected a Module or a dict of tensors, got "
                        f"{type(model).__name__}")
    report = GradNorms()
    squares: dict[str, float] = {}
    for name, p in named:
        report.sizes[name] = int(np.size(p.data))
        if p.grad is None:
            report.without_grad.append(name)
            continue
        norm = _norm([_grad_array(p)], 2.0)
        report.per_parameter[name] = norm
        layer = _layer_of(name)
        squares[layer] = squares.get(layer, 0.0) + norm * norm
    report.per_layer = {layer: math.sqrt(s) for layer, s in squares.items()}
    return report


class GradNormRecorder:
    """Records the gradient norms of every backward pass, through a hook on each parameter
    (see :meth:`~tinygrad_edu.autograd.Node.register_hook`), without touching the loop::

        recorder = GradNormRecorder(model)
        ... train an epoch ...
        print(recorder.summary())   # mean over the passes since the last summary
        recorder.remove()

    :meth:`summary` gives a :class:`GradNorms` whose numbers are means over the recorded
    passes: per parameter the mean of ``‖g‖₂``, per layer the mean of the layer's norm
    ``sqrt(Σ ‖gᵢ‖₂²)`` (each pass's norms computed first, then averaged).
    """

    def __init__(self, model: Module) -> None:
        self._named = list(model.named_parameters())
        self._squares: dict[str, list[float]] = {name: [] for name, _ in self._named}
        self._handles = [p.register_hook(self._recorder(name)) for name, p in self._named
                         if p.requires_grad]

    def _recorder(self, name: str) -> Any:
        squares = self._squares[name]

        def record(grad: Any) -> None:
            g = np.asarray(grad, dtype=np.float64).ravel()
            squares.append(float(np.dot(g, g)))

        return record

    @property
    def passes(self) -> int:
        """How many backward passes were recorded since the last summary."""
        return max((len(v) for v in self._squares.values()), default=0)

    def summary(self, reset: bool = True) -> GradNorms:
        """Mean norms over the passes recorded (and start afresh, with ``reset``)."""
        report = GradNorms()
        layers: dict[str, list[str]] = {}
        for name, p in self._named:
            report.sizes[name] = int(np.size(p.data))
            squares = self._squares[name]
            if not squares:
                report.without_grad.append(name)
                continue
            report.per_parameter[name] = float(np.mean(np.sqrt(squares)))
            layers.setdefault(_layer_of(name), []).append(name)
        for layer, names in layers.items():
            steps = min(len(self._squares[n]) for n in names)
            per_pass = np.sqrt(np.sum([self._squares[n][-steps:] for n in names], axis=0))
            report.per_layer[layer] = float(np.mean(per_pass))
        if reset:
            for squares in self._squares.values():
                squares.clear()
        return report

    def remove(self) -> None:
        """Unregister the hooks."""
        for handle in self._handles:
            handle.remove()
