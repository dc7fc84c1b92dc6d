"""The model zoo for MNIST: named architectures that a checkpoint can rebuild.

An architecture is a *name* plus a JSON-serialisable *config* dict::

    >>> model = build_model("mlp", activation="tanh")
    >>> model.architecture["config"]["sizes"]
    [784, 256, 128, 64, 10]

The pair is recorded on the model (``model.architecture``) and saved in every checkpoint,
so :func:`tinygrad_edu.checkpoint.load_checkpoint` can call ``build_model`` again.

* ``"mlp"`` -- ``nn.MLP([784, 256, 128, 64, 10])`` on flattened images ``(N, 784)``.
* ``"cnn"`` -- conv5x5(1→16, pad 2) → act → maxpool2 → conv5x5(16→32, pad 2) → act →
  maxpool2 → flatten → linear(32·7·7 = 1568 → 10), on images ``(N, 1, 28, 28)``.  With a
  non-decreasing activation (ReLU, tanh, ...: :data:`POOL_FIRST`) each block pools first and
  then applies it: the same function, on a quarter of the numbers.
  Config options (all off by default): ``batch_norm`` after each convolution, a ``hidden``
  linear layer before the classifier, ``dropout`` before it, other ``channels`` and
  ``kernel_size``.  The defaults reach 99.2% on MNIST (Adam, 6 epochs); ``tinygrad-edu
  train`` builds it with ``batch_norm=True, hidden=128, dropout=0.3``
  (:data:`tinygrad_edu.train.MODEL_OPTIONS`): 99.4% in 7 epochs of SGD with a one-cycle rate.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import nn

__all__ = [
    "MODELS",
    "architecture_of",
    "build_model",
    "default_config",
    "input_shape",
    "model_names",
    "prepare_inputs",
]

Builder = Callable[[dict[str, Any], np.random.Generator], nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """How to build one named architecture."""

    build: Builder
    defaults: dict[str, Any]
    input_shape: tuple[int, ...]
    description: str


def _build_mlp(config: dict[str, Any], rng: np.random.Generator) -> nn.Module:
    """``nn.MLP`` with the configured sizes, activation, init, bias and dropout."""
    return nn.MLP(
        list(config["sizes"]),
        activation=config["activation"],
        init=config["init"],
        bias_init=config["bias_init"],
        dropout=config["dropout"],
        rng=rng,
    )


def _activation(name: str) -> nn.Module:
    """A fresh activation module called ``name`` (e.g. ``"relu"`` -> ``nn.ReLU()``)."""
    return nn.module_for(name)


#: Activations that never decrease.  Max-pooling commutes with them -- the largest of f(a),
#: f(b), ... is f of the largest -- so a block pools first and applies the activation to a
#: quarter of the numbers: the same outputs (and, but for ties that rounding makes, such as
#: a saturated sigmoid's, the same gradients), for less work (tests/test_models.py).  GELU
#: and SiLU dip below zero, PReLU's slope is learned (it may turn negative) and RReLU draws
#: a slope per number: they keep the textbook order.
POOL_FIRST = frozenset({"identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu",
                        "softplus"})


def _conv_block(cin: int, cout: int, config: dict[str, Any],
                rng: np.random.Generator) -> list[nn.Module]:
    """conv(k, same padding) [→ batch-norm] → activation → maxpool2 (pooling first for the
    activations of :data:`POOL_FIRST`: the same function)."""
    k = int(config["kernel_size"])
    batch_norm = bool(config["batch_norm"])
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=not batch_norm,
                  activation=config["activation"], rng=rng)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    act, pool = _activation(config["activation"]), nn.MaxPool2d(2)
    layers += [pool, act] if config["activation"] in POOL_FIRST else [act, pool]
    return layers


def _build_cnn(config: dict[str, Any], rng: np.random.Generator) -> nn.Module:
    """Two conv blocks, then (optionally a hidden layer and) a linear classifier."""
    channels = [1, *(int(c) for c in config["channels"])]
    layers: list[nn.Module] = []
    for cin, cout in itertools.pairwise(channels):
        layers += _conv_block(cin, cout, config, rng)
    side = 28 // 2 ** (len(channels) - 1)
    features = channels[-1] * side * side
    layers.append(nn.Flatten())
    hidden = int(config["hidden"])
    if hidden:
        layers += [nn.Linear(features, hidden, activation=config["activation"], rng=rng),
                   _activation(config["activation"])]
        features = hidden
    if config["dropout"]:
        layers.append(nn.Dropout(float(config["dropout"]), rng=rng))
    layers.append(nn.Linear(features, 10, activation=None, rng=rng))
    return nn.Sequential(*layers)


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(
        build=_build_mlp,
        defaults={"sizes": [784, 256, 128, 64, 10], "activation": "relu", "init": None,
                  "bias_init": 0.0, "dropout": 0.0},
        input_shape=(784,),
        description="multi-layer perceptron 784-256-128-64-10 on flattened images",
    ),
    "cnn": ModelSpec(
        build=_build_cnn,
        defaults={"channels": [16, 32], "kernel_size": 5, "activation": "relu",
                  "batch_norm": False, "hidden": 0, "dropout": 0.0},
        input_shape=(1, 28, 28),
        description="conv5x5(16)-pool-conv5x5(32)-pool-linear(1568→10) on 1x28x28 images",
    ),
}


def model_names() -> list[str]:
    """The names :func:`build_model` accepts."""
    return list(MODELS)


def _spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {model_names()}") from None


def default_config(name: str) -> dict[str, Any]:
    """A fresh copy of the default config of architecture ``name``."""
    return copy.deepcopy(_spec(name).defaults)


def input_shape(name: str) -> tuple[int, ...]:
    """The shape of one input example of architecture ``name`` (without the batch axis)."""
    return _spec(name).input_shape


def prepare_inputs(name: str, images: np.ndarray) -> np.ndarray:
    """Reshape a stack of images ``(N, 28, 28)`` to what architecture ``name`` takes
    (a view, no copy)."""
    return images.reshape(len(images), *input_shape(name))


def build_model(name: str, *, rng: np.random.Generator | int | None = None,
                **config: Any) -> nn.Module:
    """Build architecture ``name``; keyword arguments override its :func:`default_config`.

    ``rng`` (a Generator or a seed) draws the initial weights, so the same seed gives the
    same model.  Unknown config keys are a ``ValueError`` listing the valid ones.  The
    returned module carries ``architecture = {"name": name, "config": full_config}``.
    """
    spec = _spec(name)
    unknown = sorted(set(config) - set(spec.defaults))
    if unknown:
        raise ValueError(
            f"build_model({name!r}): unknown config keys {unknown}; valid: {sorted(spec.defaults)}"
        )
    full = {**default_config(name), **config}
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    model = spec.build(full, generator)
    model.architecture = {"name": name, "config": full}
    return model


def architecture_of(model: Any) -> dict[str, Any]:
    """The ``{"name", "config"}`` recorded on a model made by :func:`build_model`."""
    arch = getattr(model, "architecture", None)
    if not isinstance(arch, dict) or "name" not in arch:
        raise ValueError(
            f"{type(model).__name__} has no recorded architecture: build it with "
            "tinygrad_edu.models.build_model, or pass architecture={'name': ..., 'config': ...}"
        )
    return arch
