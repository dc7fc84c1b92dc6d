"""Weight initialisers: keep each layer's output variance ≈ its input's, so signals neither
explode nor vanish through depth.

For a weight of shape (out, in) (or (out, in, kh, kw) for a convolution), ``fan_in`` is the
number of inputs each output sums over (in·kh·kw) and ``fan_out`` the number of outputs each
input feeds (out·kh·kw).  A sum of ``fan_in`` terms w·x with Var w = σ² has variance
fan_in·σ²·E[x²], so:

* **Kaiming / He** (ReLU family): ReLU halves E[x²], so σ² = gain²/fan_in with gain² = 2
  (2/(1 + α²) for a leaky slope α).  ``kaiming_normal``: N(0, σ²).
* **Xavier / Glorot** (tanh, sigmoid): balance forward and backward variance,
  σ² = 2/(fan_in + fan_out); ``xavier_uniform``: U(−a, a) with a = √(6/(fan_in + fan_out)).
* **LeCun** (SELU, self-normalising nets): σ² = 1/fan_in; ``lecun_normal``: N(0, σ²).

Every function takes an ``rng`` (``np.random.Generator``; an int seeds a new one), so a
seed gives identical models, and returns a float32 array by default.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = [
    "INITIALISERS",
    "calculate_gain",
    "constant",
    "default_for",
    "fans",
    "get",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "make_rng",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]

Shape = tuple[int, ...]


def make_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """``rng`` itself if it is a Generator, else a new Generator seeded with it."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def fans(shape: Shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shaped (out, in, *kernel)."""
    if len(shape) < 2:
        raise ValueError(f"fans: a weight needs at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:], dtype=np.int64))
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(activation: str = "relu", alpha: float = 0.01) -> float:
    """The gain g with Var w = g²/fan_in that preserves variance through ``activation``:
    √2 for ReLU-like units, √(2/(1 + α²)) for leaky ReLU, 1 otherwise."""
    if activation == "leaky_relu":
        return math.sqrt(2.0 / (1.0 + alpha * alpha))
    if activation in _KAIMING:
        return math.sqrt(2.0)
    return 1.0


def kaiming_normal(shape: Shape, rng: np.random.Generator | int | None = None,
                   gain: float = math.sqrt(2.0), dtype: type = np.float32) -> np.ndarray:
    """He et al. (2015): w ~ N(0, gain²/fan_in)."""
    std = gain / math.sqrt(fans(shape)[0])
    return (make_rng(rng).standard_normal(shape) * std).astype(dtype)


def kaiming_uniform(shape: Shape, rng: np.random.Generator | int | None = None,
                    gain: float = math.sqrt(2.0), dtype: type = np.float32) -> np.ndarray:
    """He et al. (2015), uniform: w ~ U(−a, a), a = gain·√(3/fan_in) (variance gain²/fan_in)."""
    bound = gain * math.sqrt(3.0 / fans(shape)[0])
    return make_rng(rng).uniform(-bound, bound, shape).astype(dtype)


def xavier_uniform(shape: Shape, rng: np.random.Generator | int | None = None,
                   gain: float = 1.0, dtype: type = np.float32) -> np.ndarray:
    """Glorot & Bengio (2010): w ~ U(−a, a), a = gain·√(6/(fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return make_rng(rng).uniform(-bound, bound, shape).astype(dtype)


def xavier_normal(shape: Shape, rng: np.random.Generator | int | None = None,
                  gain: float = 1.0, dtype: type = np.float32) -> np.ndarray:
    """Glorot & Bengio (2010), normal: w ~ N(0, gain²·2/(fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return (make_rng(rng).standard_normal(shape) * std).astype(dtype)


def lecun_normal(shape: Shape, rng: np.random.Generator | int | None = None,
                 gain: float = 1.0, dtype: type = np.float32) -> np.ndarray:
    """LeCun (1998), used by SELU nets: w ~ N(0, 1/fan_in)."""
    std = gain / math.sqrt(fans(shape)[0])
    return (make_rng(rng).standard_normal(shape) * std).astype(dtype)


def zeros(shape: Shape, dtype: type = np.float32) -> np.ndarray:
    """All zeros (the usual bias initialisation)."""
    return np.zeros(shape, dtype=dtype)


def constant(shape: Shape, value: float, dtype: type = np.float32) -> np.ndarray:
    """Every entry ``value`` (e.g. a bias of 0.1 keeps ReLUs initially active)."""
    return np.full(shape, value, dtype=dtype)


#: Scheme names accepted by layers' ``init=`` argument.
INITIALISERS: dict[str, Callable[..., np.ndarray]] = {
    "kaiming": kaiming_normal,
    "he": kaiming_normal,
    "kaiming_normal": kaiming_normal,
    "kaiming_uniform": kaiming_uniform,
    "xavier": xavier_uniform,
    "glorot": xavier_uniform,
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "lecun": lecun_normal,
    "lecun_normal": lecun_normal,
}

_KAIMING = {"relu", "leaky_relu", "prelu", "rrelu", "elu", "gelu", "silu", "softplus"}
_LECUN = {"selu"}


def default_for(activation: str | None) -> str:
    """The scheme that suits ``activation``: kaiming for the ReLU family, lecun for SELU,
    xavier otherwise (tanh, sigmoid, identity, softmax)."""
    name = (activation or "identity").lower()
    if name in _KAIMING:
        return "kaiming"
    if name in _LECUN:
        return "lecun"
    return "xavier"


def get(scheme: str | Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """The initialiser called ``scheme`` (or ``scheme`` itself if it is a function
    ``f(shape, rng) -> array``)."""
    if callable(scheme):
        return scheme
    try:
        return INITIALISERS[scheme.lower()]
    except KeyError:
        raise ValueError(f"unknown init {scheme!r}; choose from {sorted(INITIALISERS)}") from None


def initialise(shape: Shape, scheme: str | Callable[..., np.ndarray] | None,
               activation: str | None, rng: np.random.Generator) -> np.ndarray:
    """A float32 weight of ``shape`` drawn by ``scheme`` (default: :func:`default_for`
    ``activation``); kaiming uses the activation's gain."""
    fn = get(scheme if scheme is not None else default_for(activation))
    if fn in (kaiming_normal, kaiming_uniform):
        act = activation if activation in _KAIMING else "relu"
        return fn(shape, rng, gain=calculate_gain(act))
    return np.asarray(fn(shape, rng), dtype=np.float32)
