"""Gradient-checking tools for your own tests: gradcheck, numerical gradients, and (in
:mod:`tinygrad_edu.testing.strategies`) hypothesis strategies.

>>> import numpy as np
>>> from tinygrad_edu import Tensor
>>> from tinygrad_edu.testing import gradcheck
>>> x = Tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
>>> gradcheck(lambda t: (t * t).tanh().sum(), [x])
True
"""

from .gradcheck import (
    GradcheckError,
    analytic_jacobian,
    gradcheck,
    numerical_grad,
    numerical_jacobian,
)
from .gradgradcheck import gradgradcheck

__all__ = [
    "GradcheckError",
    "analytic_jacobian",
    "gradcheck",
    "gradgradcheck",
    "numerical_grad",
    "numerical_jacobian",
]
