"""Functions of tensors (``import tinygrad_edu.nn.functional as F``): the losses, every
registry activation (``F.relu``, ``F.leaky_relu(x, alpha=0.2)``, ``F.softmax(x, axis=1)``...),
and the layer ops (``F.linear``, ``F.conv2d``, ``F.max_pool2d``, ``F.dropout``...).

Where a function's signature is the op's, the name here *is* the registry entry (the
activations, ``F.prelu``), so it carries its formula and local gradient in its docstring.
The layer ops below are thin wrappers, each for a stated reason: a registry op takes its
tensors positionally and its parameters by keyword only, and has no "absent input", while
these functions keep PyTorch's signatures (``F.max_pool2d(x, 2)``, ``F.pad(x, 1)``,
``F.conv2d(x, w, bias=None, stride=2)``).  Each wrapper only rearranges arguments; the
checks and the math are the op's.
"""

from __future__ import annotations

import numpy as np

from ..losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss
from ..registry import activation_ops
from ..tensor import Tensor
from .activation import prelu
from .conv import IntPair
from .conv import conv2d as _conv2d
from .dropout import dropout as _dropout
from .linear import linear as _linear
from .normalization import batch_norm as _batch_norm
from .pooling import avg_pool2d as _avg_pool2d
from .pooling import max_pool2d as _max_pool2d
from .shape import flatten as _flatten
from .shape import pad as _pad

__all__ = [
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy_with_logits",
    "conv2d",
    "cross_entropy",
    "dropout",
    "flatten",
    "linear",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "pad",
    "prelu",
]

for _op in activation_ops():
    globals()[_op.name] = _op
    __all__.append(_op.name)
del _op


# bias=None (or bias=...) as a keyword: the op has no "absent input".
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b for W (out, in); ∂x = G W, ∂W = Gᵀ x, ∂b = Σ G."""
    return _linear(x, weight) if bias is None else _linear(x, weight, bias)


# bias=None, and stride/padding also positionally.
def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair = 0) -> Tensor:
    """2-D convolution of x (N, C, H, W) with weight (O, C, kh, kw) and optional bias (O,):
    y[n,o,i,j] = b[o] + Σ w[o,c,u,v] xₚ[n,c,s·i+u,s·j+v].  See the ``conv2d`` registry
    entry for the gradients."""
    if bias is None:
        return _conv2d(x, weight, stride=stride, padding=padding)
    return _conv2d(x, weight, bias, stride=stride, padding=padding)


# kernel_size and stride also positionally (F.max_pool2d(x, 2)).
def max_pool2d(x: Tensor, kernel_size: IntPair = 2, stride: IntPair | None = None) -> Tensor:
    """y = max of each kh×kw window (stride defaults to the kernel); ∂x = G at the arg-max."""
    return _max_pool2d(x, kernel_size=kernel_size, stride=stride)


# kernel_size and stride also positionally (F.avg_pool2d(x, 2)).
def avg_pool2d(x: Tensor, kernel_size: IntPair = 2, stride: IntPair | None = None) -> Tensor:
    """y = mean of each kh×kw window; ∂x = G/(kh·kw) spread over the window."""
    return _avg_pool2d(x, kernel_size=kernel_size, stride=stride)


# start_dim also positionally (F.flatten(x, 1)).
def flatten(x: Tensor, start_dim: int = 1) -> Tensor:
    """Merge the axes from ``start_dim`` on: (N, C, H, W) -> (N, C·H·W); ∂x = G reshaped."""
    return _flatten(x, start_dim=start_dim)


# padding positionally and required (F.pad(x, 1)).
def pad(x: Tensor, padding: IntPair) -> Tensor:
    """Zero padding of the last two axes by p (or (p_h, p_w)) on each side; ∂x = G's centre."""
    return _pad(x, padding=padding)


# Outside training (or with p = 0) this returns x itself, adding no node to the graph (the
# op would add an identity node), as the Dropout layer does.
def dropout(x: Tensor, p: float = 0.5, training: bool = True,
            rng: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout: y = x·m/(1 − p) with m ~ Bernoulli(1 − p) when ``training``,
    else y = x; ∂x = G·m/(1 − p) (G in eval)."""
    if not training or p == 0.0:
        return x
    return _dropout(x, p=p, training=True, rng=rng)


# PyTorch's argument order (running statistics first) and optional γ, β (default 1 and 0);
# the op takes x, γ, β as its tensors.
def batch_norm(x: Tensor, running_mean: np.ndarray | None, running_var: np.ndarray | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over N (and H, W for 4-D input), per feature/channel c:
    y = γ (x − μ)/√(σ² + ε) + β, with the batch's μ, σ² when ``training`` (and the running
    averages updated in place) and the running ones otherwise.  See the ``batch_norm``
    registry entry for the gradient."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    c = x.shape[1]
    w = weight if weight is not None else Tensor(np.ones(c, dtype=x.dtype))
    b = bias if bias is not None else Tensor(np.zeros(c, dtype=x.dtype))
    return _batch_norm(x, w, b, running_mean=running_mean, running_var=running_var,
                       training=training, momentum=momentum, eps=eps)
