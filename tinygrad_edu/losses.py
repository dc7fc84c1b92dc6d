"""Loss functions on Tensors: cross-entropy from logits, MSE, and BCE from logits.

The two "from logits" losses are fused ops: their forward combines the log-softmax (or
log-sigmoid) with the likelihood in one stable expression, and their local gradient is
the famously simple ``softmax(x) − onehot(y)`` (``σ(x) − t``), divided by the batch size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .activations import sigmoid, softplus
from .numerics import ARRAY
from .registry import tensor_op
from .tensor import Tensor

__all__ = ["binary_cross_entropy_with_logits", "cross_entropy", "mse_loss", "nll_loss"]


def _input(name: str, x: Any, what: str) -> Tensor:
    """A loss's input: a Tensor (a list or an array is a TypeError naming the loss)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: {what} must be a Tensor, got {type(x).__name__}")
    return x


def _batch(name: str, x: Any, what: str) -> Tensor:
    """Scores of shape (N, C) with N >= 1 and C >= 1: the mean over an empty batch has no
    value (an error, not NaN with warnings)."""
    x = _input(name, x, what)
    if x.ndim != 2:
        raise ValueError(f"{name}: {what} must have shape (N, C), got {x.shape}")
    if 0 in x.shape:
        raise ValueError(f"{name}: {what} of shape {x.shape}: an empty batch or no classes "
                         "(the mean loss over nothing is undefined)")
    return x


def _labels(labels: Any, logits_shape: tuple, name: str = "cross_entropy") -> np.ndarray:
    """Integer class labels checked against logits of shape (N, C)."""
    y = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if not np.all(whole):
            bad = float(y[~whole].flat[0])
            raise TypeError(f"{name}: labels must be integers (whole numbers), got {bad}")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name}: labels must be integers, got dtype {y.dtype}")
    n, c = logits_shape
    if y.shape != (n,):
        raise ValueError(
            f"{name}: labels of shape {y.shape} do not match logits of shape "
            f"{logits_shape} (expected ({n},))"
        )
    # one reduction for both ends: a negative label read unsigned is above every class
    unsigned = np.dtype(f"u{y.itemsize}").newbyteorder(y.dtype.byteorder)
    if y.size and y.view(unsigned).max() >= c:
        raise ValueError(
            f"{name}: labels must be in [0, {c - 1}] for {c} classes; "
            f"got min {y.min()}, max {y.max()}"
        )
    return y


@tensor_op(f="L = −(1/N) Σₙ log softmax(xₙ)[yₙ]", grads=("∂x = (softmax(x) − onehot(y)) / N",),
           category="loss",
           params={"labels": None, "label_smoothing": 0.0}, symbol="CE", name="cross_entropy")
class _cross_entropy:
    """Mean cross-entropy of integer labels, computed from logits (fused log-softmax + NLL).

    With ε = ``label_smoothing`` > 0 the target onehot(y) becomes q = (1 − ε)·onehot(y) + ε/C
    in both formulas: L = −(1/N) Σₙ Σ_c qₙ_c log softmax(xₙ)_c, ∂x = (softmax(x) − q) / N.
    """

    def forward(x, labels, label_smoothing=0.0):  # ctx: the labels, N·∂L/∂x = softmax − q, ε
        n, c = x.shape
        eps = label_smoothing
        rows = np.arange(n)
        e = x - x.max(axis=1, keepdims=True)  # shifted: each row's largest logit is 0
        # −Σ_c q_c log p_c = log Σ e − (1 − ε)·shiftedᵧ − (ε/C)·Σ_c shifted_c   (Σ_c q_c = 1)
        picked = e[rows, labels]  # shiftedᵧ
        spread = 0.0
        if eps:
            picked = (1 - eps) * picked
            spread = eps / c * e.sum()
        np.exp(e, out=e)  # e^shifted, in place
        total = e.sum(axis=1, keepdims=True)
        loss = (np.log(total[:, 0]) - picked).sum() - spread
        e /= total  # the softmax
        e[rows, labels] -= 1 - eps
        if eps:
            e -= eps / c
        return np.asarray(loss / n, dtype=x.dtype), (labels, e, eps)

    def backward(node, g):
        grad = node.ctx[1]
        return (grad * (g / grad.shape[0]),)

    def backward_graph(node, g):
        (x,) = node.parents
        labels, grad, eps = node.ctx
        n, c = grad.shape
        target = np.full_like(grad, eps / c)
        target[np.arange(n), labels] += 1 - eps
        return ((x.softmax(axis=1) - target) * (g / float(n)),)


def cross_entropy(logits: Tensor, labels: Any, label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy between logits (N, C) and integer labels (N,) in [0, C); an empty
    batch is a ValueError (its mean is undefined).

    ``label_smoothing`` ε in [0, 1) (as in PyTorch) trains against the target
    ``(1 − ε)·onehot(y) + ε/C`` instead of ``onehot(y)``: a regulariser that stops the
    network from pushing its logits ever further apart once it is right.
    """
    logits = _batch("cross_entropy", logits, "logits")
    eps = float(label_smoothing)
    if not 0.0 <= eps < 1.0:
        raise ValueError(
            f"cross_entropy: label_smoothing must be in [0, 1), got {label_smoothing!r}")
    return _cross_entropy(logits, labels=_labels(labels, logits.shape), label_smoothing=eps)


def nll_loss(log_probs: Tensor, labels: Any) -> Tensor:
    """Mean negative log-likelihood of integer labels given log-probabilities (N, C)."""
    log_probs = _batch("nll_loss", log_probs, "log_probs")
    y = _labels(labels, log_probs.shape, "nll_loss")
    return -log_probs[np.arange(len(y)), y].mean()


def _same_shape(name: str, a: Tensor, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name}: input shape {a.shape} and target shape {b.shape} differ")


def mse_loss(prediction: Tensor, target: Any) -> Tensor:
    """Mean squared error ``(1/n) Σ (prediction − target)²`` (n >= 1)."""
    prediction = _input("mse_loss", prediction, "prediction")
    target = Tensor._coerce(target, prediction)
    _same_shape("mse_loss", prediction, target)
    if prediction.size == 0:
        raise ValueError("mse_loss: empty input (the mean over nothing is undefined)")
    return ((prediction - target) ** 2).mean()


@tensor_op(f="L = (1/n) Σ max(x, 0) − x·t + ln(1 + e^(−|x|))",
           grads=("∂x = (σ(x) − t) / n", "∂t = −x / n"), category="loss", symbol="BCE",
           name="binary_cross_entropy_with_logits")
class _bce_with_logits:
    """Mean binary cross-entropy with targets t in [0, 1], computed from logits x."""

    def forward(x, t):
        loss = softplus.f(ARRAY, x) - x * t  # −[t ln σ(x) + (1 − t) ln(1 − σ(x))]
        return np.asarray(loss.mean(), dtype=x.dtype), None

    def backward(node, g):
        x, t = node.parents
        n = x.data.size
        gx = gt = None
        if x.requires_grad:
            gx = (sigmoid.f(ARRAY, x.data) - t.data) * (g / n)
        if t.requires_grad:
            gt = -x.data * (g / n)
        return gx, gt

    def backward_graph(node, g):
        x, t = node.parents
        scale = g / float(x.data.size)
        return (sigmoid(x) - t) * scale if x.requires_grad else None, \
            -x * scale if t.requires_grad else None


def binary_cross_entropy_with_logits(logits: Tensor, targets: Any) -> Tensor:
    """Mean binary cross-entropy of targets in [0, 1] given logits (stable for any logit)."""
    name = "binary_cross_entropy_with_logits"
    logits = _input(name, logits, "logits")
    targets = Tensor._coerce(targets, logits)
    _same_shape(name, logits, targets)
    if logits.size == 0:
        raise ValueError(f"{name}: empty input (the mean over nothing is undefined)")
    return _bce_with_logits(logits, targets)
