"""Image layers: Conv2d, MaxPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d.

Each checks its input and names itself and the shapes when they do not fit, e.g.
``Conv2d(1, 16, kernel_size=5): expected input (N, 1, H, W), got (128, 3, 28, 28)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from . import init as _init
from .conv import conv2d, pair
from .module import Module, Parameter
from .normalization import batch_norm
from .pooling import avg_pool2d, max_pool2d

__all__ = ["AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "MaxPool2d"]


def _shape(x: Any) -> tuple[int, ...]:
    return x.data.shape if isinstance(x, Tensor) else np.shape(x)


def _fmt(v: tuple[int, int]) -> str:
    return str(v[0]) if v[0] == v[1] else str(v)


class Conv2d(Module):
    """2-D convolution: (N, in_channels, H, W) -> (N, out_channels, H', W') with
    H' = ⌊(H + 2·padding − kh)/stride⌋ + 1; weight (out, in, kh, kw), bias (out,).

    Weights default to He (kaiming) initialisation, fan_in = in·kh·kw; ``init`` overrides.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 bias: bool = True, init: Any = None, bias_init: float = 0.0,
                 activation: str | None = "relu",
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = pair(kernel_size), pair(stride), \
            pair(padding)
        rng = _init.make_rng(rng)
        shape = (out_channels, in_channels) + self.kernel_size
        self.weight = Parameter(_init.initialise(shape, init, activation, rng))
        if bias:
            self.bias = Parameter(_init.constant((out_channels,), bias_init))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        shape = _shape(x)
        kh, kw = self.kernel_size
        ph, pw = self.padding
        if len(shape) != 4 or shape[1] != self.in_channels:
            raise ValueError(
                f"{self!r}: expected input (N, {self.in_channels}, H, W), got {shape}"
            )
        if shape[2] + 2 * ph < kh or shape[3] + 2 * pw < kw:
            raise ValueError(
                f"{self!r}: input {shape} is smaller than the kernel {self.kernel_size} "
                f"(after padding {self.padding})"
            )
        if self.bias is None:
            return conv2d(x, self.weight, stride=self.stride, padding=self.padding)
        return conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={_fmt(self.kernel_size)}"
        if self.stride != (1, 1):
            s += f", stride={_fmt(self.stride)}"
        if self.padding != (0, 0):
            s += f", padding={_fmt(self.padding)}"
        return s + ("" if self.bias is not None else ", bias=False")


class _Pool2d(Module):
    _op: Any = None

    def __init__(self, kernel_size: int | tuple[int, int] = 2,
                 stride: int | tuple[int, int] | None = None) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride) if stride is not None else self.kernel_size

    def forward(self, x: Tensor) -> Tensor:
        shape = _shape(x)
        kh, kw = self.kernel_size
        if len(shape) != 4 or shape[2] < kh or shape[3] < kw:
            raise ValueError(
                f"{self!r}: expected input (N, C, H, W) with H >= {kh}, W >= {kw}, got {shape}"
            )
        return self._op(x, kernel_size=self.kernel_size, stride=self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={_fmt(self.kernel_size)}, stride={_fmt(self.stride)}"


class MaxPool2d(_Pool2d):
    """Max pooling over kh×kw windows (stride defaults to the kernel size)."""

    _op = max_pool2d


class AvgPool2d(_Pool2d):
    """Average pooling over kh×kw windows (stride defaults to the kernel size)."""

    _op = avg_pool2d


class _BatchNorm(Module):
    _ndims: tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine = affine
        ones, zeros = np.ones(num_features, np.float32), np.zeros(num_features, np.float32)
        # without affine, γ = 1 and β = 0 are constants, not parameters
        self.weight = Parameter(ones) if affine else Tensor(ones)
        self.bias = Parameter(zeros) if affine else Tensor(zeros)
        self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        shape = _shape(x)
        if len(shape) not in self._ndims or shape[1] != self.num_features:
            raise ValueError(
                f"{self!r}: expected input {self._layout.format(self.num_features)}, "
                f"got {shape}"
            )
        return batch_norm(x, self.weight, self.bias, running_mean=self.running_mean,
                          running_var=self.running_var, training=self.training,
                          momentum=self.momentum, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input per feature C; running mean and
    variance are buffers (saved in the state dict)."""

    _ndims = (2, 3)
    _layout = "(N, {0}) or (N, {0}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input per channel, statistics over N, H, W;
    running mean and variance are buffers (saved in the state dict)."""

    _ndims = (4,)
    _layout = "(N, {0}, H, W)"
