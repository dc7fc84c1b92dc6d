"""tinygrad_edu: reverse-mode autodiff you can read, on scalars (Value) and numpy arrays (Tensor).

Every operation and activation is defined once in the registry with its forward formula
and its local gradient side by side (:mod:`tinygrad_edu.ops`,
:mod:`tinygrad_edu.activations`); both engines, the tests, the graph pictures and the
backward explainer read those same definitions.
"""

from . import nn, optim  # noqa: F401  (registers the nn ops: conv2d, pooling...)
from .autograd import enable_grad, is_grad_enabled, no_grad
from .losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss
from .registry import REGISTRY, activation_ops
from .tensor import Tensor
from .value import Value

__version__ = "0.1.0"

__all__ = [
    "REGISTRY",
    "Tensor",
    "Value",
    "activation_ops",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "enable_grad",
    "is_grad_enabled",
    "mse_loss",
    "nll_loss",
    "no_grad",
]
