"""tinygrad_edu: reverse-mode autodiff you can read, on scalars (Value) and numpy arrays (Tensor).

Every operation and activation is defined once in the registry with its forward formula
and its local gradient side by side (:mod:`tinygrad_edu.ops`,
:mod:`tinygrad_edu.activations`); both engines, the tests, the graph pictures and the
backward explainer read those same definitions.

The layers, each importing only the ones before it: the graph core (``autograd``) → the
registry → the ops and activations → the engines (``Value``, ``Tensor``) → losses, ``nn``,
``optim`` → training, ``viz``, the command line.  This package module, above them all,
connects them: it loads ``nn`` (its layer ops are registry entries too) and makes notebooks
show every node as its graph, drawn by ``viz`` (loaded when a notebook first asks).
"""

from typing import Any

from . import nn, optim  # noqa: F401  (see above)
from .anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .autograd import Node, enable_grad, is_grad_enabled, no_grad
from .higher_order import derivative, grad
from .hooks import HookError, RemovableHandle, retain_intermediate_grads
from .losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss
from .registry import REGISTRY, activation_ops
from .tensor import Tensor
from .value import Value

__version__ = "0.1.0"


def _notebook_display(node: Node, mime_type: str) -> str | None:
    """Jupyter's picture of a node: its computation graph (SVG), or text without Graphviz."""
    from .viz.graph import notebook_repr

    return notebook_repr(node, mime_type)


Node.display_hook = _notebook_display

#: Names of :mod:`tinygrad_edu.viz` offered here too (``from tinygrad_edu import draw_graph``);
#: viz is loaded on first use, so ``import tinygrad_edu`` stays light.
_VIZ_NAMES = ("draw_graph", "explain_backward")


def __getattr__(name: str) -> Any:
    if name in _VIZ_NAMES:
        from . import viz

        return getattr(viz, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "REGISTRY",
    "AnomalyError",
    "HookError",
    "RemovableHandle",
    "Tensor",
    "Value",
    "activation_ops",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "derivative",
    "detect_anomaly",
    "draw_graph",
    "enable_grad",
    "explain_backward",
    "grad",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "mse_loss",
    "nll_loss",
    "no_grad",
    "retain_intermediate_grads",
    "set_detect_anomaly",
]
