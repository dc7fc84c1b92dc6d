"""See backpropagation: computation-graph pictures and a step-by-step backward trace.

* :func:`draw_graph` -- a Value/Tensor graph as a ``graphviz.Digraph`` (records with data and
  grad, op nodes, local gradients on the edges); Jupyter shows nodes this way automatically.
* :func:`explain_backward` -- run backward and get every step: upstream × local = contribution,
  and the parent's running total.
* :func:`write_stepper_html` -- a self-contained HTML page that steps through a trace.
* :func:`draw_modules` -- one node per layer for real networks (a training step of an MLP/CNN).
* :func:`write_activation_gallery` -- every registry activation plotted with its derivative.
* :func:`plot_grad_flow` -- the gradient's norm per layer (log scale): vanishing or exploding?
* :func:`evaluate` -- the safe expression language of ``tinygrad-edu explain``.
"""

from .explain import BackwardTrace, Step, explain_backward
from .expression import ExpressionError, evaluate, parse
from .grad_flow import plot_grad_flow
from .graph import (
    INSTALL_HINT,
    GraphvizNotFound,
    dot_available,
    draw_graph,
    mimebundle,
    render_svg,
    save,
)
from .module_view import ModuleTrace, draw_modules, draw_training_step, trace_modules
from .plot import activation_svg, write_activation_gallery
from .stepper import stepper_html, write_stepper_html

__all__ = [
    "INSTALL_HINT",
    "BackwardTrace",
    "ExpressionError",
    "GraphvizNotFound",
    "ModuleTrace",
    "Step",
    "activation_svg",
    "dot_available",
    "draw_graph",
    "draw_modules",
    "draw_training_step",
    "evaluate",
    "explain_backward",
    "mimebundle",
    "parse",
    "plot_grad_flow",
    "render_svg",
    "save",
    "stepper_html",
    "trace_modules",
    "write_activation_gallery",
    "write_stepper_html",
]
