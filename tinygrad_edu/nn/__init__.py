"""Neural-network building blocks: modules with parameters, layers, initialisers, and the
layer ops (conv2d, pooling, batch-norm, dropout...) as registry entries.

>>> from tinygrad_edu import nn
>>> model = nn.MLP([784, 256, 128, 64, 10], activation="relu")
>>> model.num_parameters()
242762

Every registry activation has a module here, generated from the registry
(``nn.ReLU()``, ``nn.LeakyReLU(alpha=0.2)``, ``nn.GELU(approximate="tanh")``...).

Where things are, one file per concept, each holding its registry op (forward and backward
side by side), its layer(s) and its argument checks: :mod:`.linear` (``linear``, Linear,
MLP), :mod:`.conv` (``conv2d``, Conv2d), :mod:`.pooling` (``max_pool2d``, ``avg_pool2d``,
MaxPool2d, AvgPool2d), :mod:`.normalization` (``batch_norm``, BatchNorm1d, BatchNorm2d),
:mod:`.dropout` (``dropout``, Dropout), :mod:`.activation` (``prelu``, PReLU, RReLU and the
activation modules), :mod:`.shape` (``flatten``, ``pad``, Flatten); besides them
:mod:`.module` (Module, Parameter, Sequential, ModuleList), :mod:`.init` (initialisers) and
:mod:`.functional` (everything as functions), :mod:`.utils` (gradient clipping and
the per-layer gradient-norm report, as ``torch.nn.utils``).  Convolution and pooling compute
channels-last in memory behind the NCHW interface (see :mod:`.conv`).
"""

from __future__ import annotations

from typing import Any

from . import functional, init, utils
from .activation import PReLU, RReLU, activation_modules, module_for, prelu
from .conv import Conv2d, conv2d
from .dropout import Dropout, dropout
from .linear import MLP, Linear, linear
from .module import Module, ModuleList, Parameter, Sequential, ShapeError, StateDictError
from .normalization import BatchNorm1d, BatchNorm2d, batch_norm
from .pooling import AvgPool2d, MaxPool2d, avg_pool2d, max_pool2d
from .shape import Flatten, flatten, pad

_ACTIVATIONS = activation_modules()
globals().update(_ACTIVATIONS)

__all__ = [
    "MLP",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "Linear",
    "MaxPool2d",
    "Module",
    "ModuleList",
    "PReLU",
    "Parameter",
    "RReLU",
    "Sequential",
    "ShapeError",
    "StateDictError",
    "activation_modules",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "dropout",
    "flatten",
    "functional",
    "init",
    "linear",
    "max_pool2d",
    "module_for",
    "pad",
    "prelu",
    "utils",
]
__all__.extend(sorted(_ACTIVATIONS))


def __getattr__(name: str) -> Any:
    """Modules for activations registered after import (e.g. a user's own entry)."""
    modules = activation_modules()
    if name in modules:
        return modules[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
