"""Neural-network building blocks: modules with parameters, layers, initialisers, and the
layer ops (conv2d, pooling, batch-norm, dropout...) as registry entries.

>>> from tinygrad_edu import nn
>>> model = nn.MLP([784, 256, 128, 64, 10], activation="relu")
>>> model.num_parameters()
242762

Every registry activation has a module here, generated from the registry
(``nn.ReLU()``, ``nn.LeakyReLU(alpha=0.2)``, ``nn.GELU(approximate="tanh")``...).

Where things are: :mod:`.module` (Module, Parameter, Sequential), :mod:`.layers` (Linear,
MLP, Flatten, Dropout), :mod:`.conv_layers` (Conv2d, pooling, batch-norm modules),
:mod:`.activation` (activation modules, PReLU, RReLU), :mod:`.init` (initialisers),
:mod:`.functional` (everything as functions); the registry ops, one concept per module:
:mod:`.linear`, :mod:`.conv`, :mod:`.pooling`, :mod:`.normalization`, :mod:`.dropout`,
:mod:`.shape` (pad, flatten).  Convolution and pooling compute channels-last in memory
behind the NCHW interface (see :mod:`.conv`).  Programs that own their process (the
``tinygrad-edu train`` command, the benchmarks) may call
:func:`.allocator.keep_freed_memory`; importing this package changes nothing global.
"""

from __future__ import annotations

from typing import Any

from . import allocator, functional, init
from .activation import PReLU, RReLU, activation_modules, module_for, prelu
from .conv import conv2d
from .conv_layers import AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, MaxPool2d
from .dropout import dropout
from .layers import MLP, Dropout, Flatten, Linear
from .linear import linear
from .module import Module, ModuleList, Parameter, Sequential, StateDictError
from .normalization import batch_norm
from .pooling import avg_pool2d, max_pool2d
from .shape import flatten, pad

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
    "StateDictError",
    "activation_modules",
    "allocator",
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
]
__all__.extend(sorted(_ACTIVATIONS))


def __getattr__(name: str) -> Any:
    """Modules for activations registered after import (e.g. a user's own entry)."""
    modules = activation_modules()
    if name in modules:
        return modules[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
