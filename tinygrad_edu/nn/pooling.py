"""Max and average pooling over the spatial axes: the ``max_pool2d`` / ``avg_pool2d`` ops and
the :class:`MaxPool2d` / :class:`AvgPool2d` layers.

A kh×kw window slides with ``stride`` (default: the kernel size) over x (N, C, H, W); each
output is the max (or the mean) of one window, H' = ⌊(H − kh)/stride⌋ + 1
(:func:`.conv.conv_output_size` without padding).

Like :mod:`.conv`, the work happens channels-last (the speed section at the end of this
file): x is read through its (N, H, W, C) transpose (free when the memory is already
channels-last, as convolution outputs are) and the result is returned as an (N, C, H', W')
view of channels-last memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ops import broadcast_to, index_add
from ..parallel import parallel_parts, parts
from ..registry import tensor_op
from ..tensor import Tensor
from ..workspace import workspace
from .conv import (
    IntPair,
    checked_pair,
    col_index,
    conv_output_size,
    fmt_pair,
    pair,
    patches,
)
from .module import Module, ShapeError

__all__ = ["AvgPool2d", "MaxPool2d", "avg_pool2d", "max_pool2d"]


def _setup(x: np.ndarray, kernel_size: IntPair, stride: IntPair | None, name: str) -> tuple:
    """Every precondition of a pooling op, checked once (the layers rely on it); returns the
    channels-last view of x, kernel, stride and output size."""
    kh, kw = pair(kernel_size)
    sh, sw = pair(stride if stride is not None else (kh, kw))
    if kh < 1 or kw < 1 or sh < 1 or sw < 1:
        raise ValueError(f"{name}: kernel {(kh, kw)} and stride {(sh, sw)} must be >= 1")
    if x.ndim != 4 or x.shape[2] < kh or x.shape[3] < kw:
        raise ShapeError(name, f"expected input (N, C, H, W) with H >= {kh}, W >= {kw}, "
                               f"got {x.shape}")
    ho, wo = conv_output_size(x.shape[2], kh, sh, 0), conv_output_size(x.shape[3], kw, sw, 0)
    return x.transpose(0, 2, 3, 1), kh, kw, sh, sw, ho, wo


@tensor_op(f="y[n,c,i,j] = max_{u,v} x[n, c, s·i + u, s·j + v]",
           grads=("∂x = G routed to the arg-max of each window (the first one if tied)",),
           category="nn", symbol="maxpool", params={"kernel_size": 2, "stride": None})
class max_pool2d:
    """Max pooling with a kh×kw window and ``stride`` (default: the kernel size).

    ∂y/∂x is 1 at each window's maximum and 0 elsewhere, so each output's gradient goes to
    the input that won; among tied inputs the first in row-major window order wins (as in
    PyTorch), so the gradient is a valid subgradient and sums to G.  A NaN wins its window
    (y is NaN) and gets the gradient -- the last NaN if several, as in PyTorch -- so
    ``x.grad`` points at where the NaN came in.

    The forward records which kernel offset won each window (a small integer array ``arg``)
    and the backward hands each input at offset k the gradient G·[arg = k].
    """

    def forward(x, kernel_size, stride):
        xh, kh, kw, sh, sw, ho, wo = _setup(x, kernel_size, stride, "max_pool2d")
        y, arg = _max_and_argmax(xh, kh, kw, sh, sw, ho, wo)
        return y.transpose(0, 3, 1, 2), (arg, kh, kw, sh, sw)

    def backward(node, g):
        arg, kh, kw, sh, sw = node.ctx
        xh = node.parents[0].data.transpose(0, 2, 3, 1)
        dxh = _route_to_argmax(g.transpose(0, 2, 3, 1), arg, xh.shape, kh, kw, sh, sw)
        return (dxh.transpose(0, 3, 1, 2),)

    def backward_graph(node, g):
        """G scattered onto each window's arg-max (constant indices): ``index_add``."""
        arg, kh, kw, sh, sw = node.ctx
        x = node.parents[0]
        c = x.data.shape[1]
        index, _ = col_index(x.data.shape, kh, kw, sh, sw, 0, 0)  # (N·H'·W', kh·kw·C)
        winner = index.reshape(-1, kh * kw, c)[np.arange(arg.size // c)[:, None],
                                               arg.reshape(-1, c), np.arange(c)]
        flat = g.transpose(0, 2, 3, 1).reshape(-1)
        return (index_add(flat, index=winner.reshape(-1), shape=(x.data.size,)).reshape(
            x.data.shape),)


@tensor_op(f="y[n,c,i,j] = (1/(kh·kw)) Σ_{u,v} x[n, c, s·i + u, s·j + v]",
           grads=("∂x = G / (kh·kw) spread over each window (summed where windows overlap)",),
           category="nn", symbol="avgpool", params={"kernel_size": 2, "stride": None})
class avg_pool2d:
    """Average pooling with a kh×kw window and ``stride`` (default: the kernel size).

    Each input in a window contributes 1/(kh·kw) to that window's output, so it receives
    1/(kh·kw) of that output's gradient, summed over the windows that contain it.
    """

    def forward(x, kernel_size, stride):
        xh, kh, kw, sh, sw, ho, wo = _setup(x, kernel_size, stride, "avg_pool2d")
        y = _window_means(xh, kh, kw, sh, sw, ho, wo)
        return y.transpose(0, 3, 1, 2), (kh, kw, sh, sw)

    def backward(node, g):
        kh, kw, sh, sw = node.ctx
        xh = node.parents[0].data.transpose(0, 2, 3, 1)
        gh = g.transpose(0, 2, 3, 1) * np.asarray(1.0 / (kh * kw), dtype=g.dtype)
        dxh = _spread_over_windows(gh, xh.shape, kh, kw, sh, sw)
        return (dxh.transpose(0, 3, 1, 2),)

    def backward_graph(node, g):
        """G/(kh·kw) copied to every window position and scattered back (``index_add``)."""
        kh, kw, sh, sw = node.ctx
        x = node.parents[0]
        n, c, ho, wo = g.data.shape
        index, _ = col_index(x.data.shape, kh, kw, sh, sw, 0, 0)
        share = g.transpose(0, 2, 3, 1).reshape(n * ho * wo, 1, c) / float(kh * kw)
        spread = broadcast_to(share, shape=(n * ho * wo, kh * kw, c)).reshape(-1)
        return (index_add(spread, index=index.reshape(-1), shape=(x.data.size,)).reshape(
            x.data.shape),)


class _Pool2d(Module):
    """A pooling layer: kernel and stride (default: the kernel), input errors are the op's
    checks under the layer's name."""

    _op: Any = None

    def __init__(self, kernel_size: IntPair = 2, stride: IntPair | None = None) -> None:
        super().__init__()
        who = type(self).__name__
        self.kernel_size = checked_pair(who, "kernel_size", kernel_size, 1)
        self.stride = checked_pair(who, "stride", stride, 1) if stride is not None \
            else self.kernel_size

    def forward(self, x: Tensor) -> Tensor:
        try:
            return self._op(x, kernel_size=self.kernel_size, stride=self.stride)
        except ShapeError as err:
            raise self.input_error(err) from None

    def extra_repr(self) -> str:
        return f"kernel_size={fmt_pair(self.kernel_size)}, stride={fmt_pair(self.stride)}"


class MaxPool2d(_Pool2d):
    """Max pooling over kh×kw windows (stride defaults to the kernel size)."""

    _op = max_pool2d


class AvgPool2d(_Pool2d):
    """Average pooling over kh×kw windows (stride defaults to the kernel size)."""

    _op = avg_pool2d


# ------------------------------------------------------------------ speed: channels-last loops
# Both directions work on the (N, H, W, C) view and loop over the kh·kw kernel offsets (4
# for 2×2), each step a few vectorised operations on a strided (N, H', W', C) slice; never
# a loop over images or pixels.  Non-overlapping windows (stride = kernel, the common 2×2
# stride 2) need no stride tricks at all: (N, H, W, C) reshapes to (N, H/k, k, W/k, k, C).
def _offsets(kh: int, kw: int, sh: int, sw: int, ho: int, wo: int):
    """For every kernel offset (u, v), the index of the strided window ``xh[:, u::sh, v::sw, :]``
    cropped to the output size."""
    for u in range(kh):
        for v in range(kw):
            yield (slice(None), slice(u, u + sh * (ho - 1) + 1, sh),
                   slice(v, v + sw * (wo - 1) + 1, sw), slice(None))


def _max_and_argmax(xh: np.ndarray, kh: int, kw: int, sh: int, sw: int, ho: int,
                    wo: int) -> tuple[np.ndarray, np.ndarray]:
    """The running max y over the offsets, and the winning offset as a small integer array:
    offset k wins where xₖ > max(x₀ … x_{k−1}), and since k grows, arg = max(arg, k·[xₖ > y])
    (ties keep the earlier offset); where y is NaN, the last NaN's offset.  The images are
    split over the cores."""
    n, c = xh.shape[0], xh.shape[3]
    y = workspace("max_pool2d.y", (n, ho, wo, c), xh.dtype)
    arg = workspace("max_pool2d.arg", y.shape, np.uint8 if kh * kw < 256 else np.uint16)
    step = workspace("max_pool2d.step", y.shape, arg.dtype)

    def pool(_: int, a: int, b: int) -> None:
        slices = _offsets(kh, kw, sh, sw, ho, wo)
        x_a, y_a, arg_a, step_a = xh[a:b], y[a:b], arg[a:b], step[a:b]
        np.copyto(y_a, x_a[next(slices)])
        arg_a.fill(0)
        for k, s in enumerate(slices, start=1):
            xs = x_a[s]
            np.multiply(np.greater(xs, y_a), arg.dtype.type(k), out=step_a)
            np.maximum(arg_a, step_a, out=arg_a)
            np.maximum(y_a, xs, out=y_a)
        if np.isnan(np.add.reduce(y_a, axis=None)):  # a NaN in some window (rare): it wins
            for k, s in enumerate(_offsets(kh, kw, sh, sw, ho, wo)):  # the last NaN, as PyTorch
                np.copyto(arg_a, arg.dtype.type(k), where=np.isnan(x_a[s]))

    parallel_parts(pool, parts(n, xh[0].nbytes))
    return y, arg


def _route_to_argmax(gh: np.ndarray, arg: np.ndarray, shape_nhwc: tuple, kh: int, kw: int,
                     sh: int, sw: int) -> np.ndarray:
    """∂x (N, H, W, C): the input at offset k gets G·[arg = k]; written straight into place
    when the windows tile the input, accumulated when they overlap or leave a border.  The
    images are split over the cores."""
    ho, wo = arg.shape[1:3]
    tiles = _tiles(shape_nhwc, kh, kw, sh, sw, ho, wo)
    dxh = workspace("max_pool2d.dx", shape_nhwc, gh.dtype)
    won = workspace("max_pool2d.won", arg.shape, np.bool_)

    def route(_: int, a: int, b: int) -> None:
        dx_a, g_a, arg_a, won_a = dxh[a:b], gh[a:b], arg[a:b], won[a:b]
        if not tiles:
            dx_a.fill(0)
        for k, s in enumerate(_offsets(kh, kw, sh, sw, ho, wo)):
            np.equal(arg_a, k, out=won_a)
            if tiles:
                np.multiply(won_a, g_a, out=dx_a[s])
            else:
                dx_a[s] += won_a * g_a

    parallel_parts(route, parts(shape_nhwc[0], dxh[0].nbytes))
    return dxh


def _window_means(xh: np.ndarray, kh: int, kw: int, sh: int, sw: int, ho: int,
                  wo: int) -> np.ndarray:
    """The mean of every window, (N, H', W', C)."""
    if (sh, sw) == (kh, kw):
        return _blocks(xh, kh, kw, ho, wo).mean(axis=(2, 4), dtype=xh.dtype)
    return patches(xh, kh, kw, sh, sw).mean(axis=(3, 4), dtype=xh.dtype)


def _spread_over_windows(gh: np.ndarray, shape_nhwc: tuple, kh: int, kw: int, sh: int,
                         sw: int) -> np.ndarray:
    """∂x (N, H, W, C) from the already scaled G/(kh·kw) (N, H', W', C): each window's share
    added onto every input of that window."""
    n, ho, wo, c = gh.shape
    if (sh, sw) == (kh, kw):
        blocks = np.broadcast_to(gh[:, :, None, :, None, :], (n, ho, kh, wo, kw, c))
        return _place(blocks, shape_nhwc)
    dxh = np.zeros(shape_nhwc, dtype=gh.dtype)
    for s in _offsets(kh, kw, sh, sw, ho, wo):
        dxh[s] += gh
    return dxh


def _blocks(xh: np.ndarray, kh: int, kw: int, ho: int, wo: int) -> np.ndarray:
    """Non-overlapping windows of xh (N, H, W, C) as (N, H', kh, W', kw, C)."""
    n, _, _, c = xh.shape
    return xh[:, :ho * kh, :wo * kw, :].reshape(n, ho, kh, wo, kw, c)


def _place(dblocks: np.ndarray, shape_nhwc: tuple) -> np.ndarray:
    """Gradient blocks (N, H', kh, W', kw, C) back at their input positions, zeros where
    the cropped border was, as (N, H, W, C)."""
    n, ho, kh, wo, kw, c = dblocks.shape
    inner = dblocks.reshape(n, ho * kh, wo * kw, c)
    if inner.shape != shape_nhwc:
        full = np.zeros(shape_nhwc, dtype=dblocks.dtype)
        full[:, :ho * kh, :wo * kw, :] = inner
        inner = full
    return inner


def _tiles(shape_nhwc: tuple, kh: int, kw: int, sh: int, sw: int, ho: int, wo: int) -> bool:
    """True when the windows tile the input exactly (stride = kernel, nothing cropped), so
    every input element lies in exactly one window."""
    return (sh, sw) == (kh, kw) and (ho * kh, wo * kw) == shape_nhwc[1:3]
