"""Max and average pooling over the spatial axes, as registry ops.

Like :mod:`.conv`, the work happens channels-last: x (N, C, H, W) is read through its
(N, H, W, C) transpose (free when the memory is already channels-last, as convolution
outputs are) and the result is returned as an (N, C, H', W') view of channels-last memory.

The common case, non-overlapping windows (stride = kernel, e.g. 2×2 stride 2), needs no
stride tricks at all: (N, H, W, C) reshapes to (N, H/k, k, W/k, k, C) and the pooling is a
max (or mean) over axes 2 and 4.  Overlapping windows use the strided patch view and a
loop over the kh·kw kernel offsets in the backward.
"""

from __future__ import annotations

import numpy as np

from ..registry import tensor_op
from .conv import _patches, pair

__all__ = ["avg_pool2d", "max_pool2d"]


def _setup(x: np.ndarray, kernel_size, stride, name: str) -> tuple:
    """Channels-last view of x, kernel, stride and output size, checked."""
    if x.ndim != 4:
        raise ValueError(f"{name}: expected input (N, C, H, W), got {x.shape}")
    kh, kw = pair(kernel_size)
    sh, sw = pair(stride if stride is not None else (kh, kw))
    h, w = x.shape[2], x.shape[3]
    if kh < 1 or kw < 1 or sh < 1 or sw < 1 or kh > h or kw > w:
        raise ValueError(
            f"{name}: kernel {(kh, kw)} / stride {(sh, sw)} do not fit input {x.shape}"
        )
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    return x.transpose(0, 2, 3, 1), kh, kw, sh, sw, ho, wo


def _blocks(xh: np.ndarray, kh: int, kw: int, ho: int, wo: int) -> np.ndarray:
    """Non-overlapping windows of xh (N, H, W, C) as (N, H', kh, W', kw, C)."""
    n, _, _, c = xh.shape
    return xh[:, :ho * kh, :wo * kw, :].reshape(n, ho, kh, wo, kw, c)


def _place(dblocks: np.ndarray, shape_nhwc: tuple) -> np.ndarray:
    """Gradient blocks (N, H', kh, W', kw, C) back at their input positions, zeros where
    the cropped border was; returned as an (N, C, H, W) view."""
    n, ho, kh, wo, kw, c = dblocks.shape
    inner = dblocks.reshape(n, ho * kh, wo * kw, c)
    if inner.shape != shape_nhwc:
        full = np.zeros(shape_nhwc, dtype=dblocks.dtype)
        full[:, :ho * kh, :wo * kw, :] = inner
        inner = full
    return inner.transpose(0, 3, 1, 2)


def _offsets(xh: np.ndarray, kh: int, kw: int, sh: int, sw: int, ho: int, wo: int):
    """(slice of xh read at kernel offset (u, v)) for every offset: the strided window
    ``xh[:, u::sh, v::sw, :]`` cropped to the output size."""
    for u in range(kh):
        for v in range(kw):
            yield (slice(None), slice(u, u + sh * (ho - 1) + 1, sh),
                   slice(v, v + sw * (wo - 1) + 1, sw), slice(None))


def _tiles(shape_nhwc: tuple, kh: int, kw: int, sh: int, sw: int, ho: int, wo: int) -> bool:
    """True when the windows tile the input exactly (stride = kernel, nothing cropped), so
    every input element lies in exactly one window."""
    return (sh, sw) == (kh, kw) and (ho * kh, wo * kw) == shape_nhwc[1:3]


@tensor_op(f="y[n,c,i,j] = max_{u,v} x[n, c, s·i + u, s·j + v]",
           grads=("∂x = G routed to the arg-max of each window (the first one if tied)",),
           category="nn", symbol="maxpool", params={"kernel_size": 2, "stride": None})
class max_pool2d:
    """Max pooling with a kh×kw window and ``stride`` (default: the kernel size).

    ∂y/∂x is 1 at each window's maximum and 0 elsewhere, so each output's gradient goes to
    the input that won; among tied inputs the first in row-major window order wins (as in
    PyTorch), so the gradient is a valid subgradient and sums to G.

    Both passes loop over the kh·kw kernel offsets k (4 for 2×2), each step a few
    vectorised operations on a strided (N, H', W', C) slice.  Forward: y = running max,
    and the arg-max offset is recorded as a small integer array: offset k wins where
    xₖ > max(x₀ … x_{k−1}), and since k grows, arg = max(arg, k·[xₖ > y]).  Backward: the
    input at offset k gets G·[arg = k].
    """

    def forward(x, kernel_size, stride):
        xh, kh, kw, sh, sw, ho, wo = _setup(x, kernel_size, stride, "max_pool2d")
        slices = _offsets(xh, kh, kw, sh, sw, ho, wo)
        y = xh[next(slices)].copy()
        arg = np.zeros(y.shape, dtype=np.uint8 if kh * kw < 256 else np.uint16)
        step = np.empty_like(arg)
        for k, s in enumerate(slices, start=1):
            xs = xh[s]
            np.multiply(np.greater(xs, y), arg.dtype.type(k), out=step)
            np.maximum(arg, step, out=arg)
            np.maximum(y, xs, out=y)
        return y.transpose(0, 3, 1, 2), (arg, kh, kw, sh, sw)

    def backward(node, g):
        arg, kh, kw, sh, sw = node._ctx
        xh = node._parents[0].data.transpose(0, 2, 3, 1)
        gh = g.transpose(0, 2, 3, 1)
        ho, wo = arg.shape[1:3]
        tiles = _tiles(xh.shape, kh, kw, sh, sw, ho, wo)
        dxh = (np.empty if tiles else np.zeros)(xh.shape, dtype=g.dtype)
        for k, s in enumerate(_offsets(xh, kh, kw, sh, sw, ho, wo)):
            if tiles:
                np.multiply(arg == k, gh, out=dxh[s])
            else:
                dxh[s] += (arg == k) * gh
        return (dxh.transpose(0, 3, 1, 2),)


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
        if (sh, sw) == (kh, kw):
            y = _blocks(xh, kh, kw, ho, wo).mean(axis=(2, 4), dtype=x.dtype)
        else:
            y = _patches(xh, kh, kw, sh, sw).mean(axis=(3, 4), dtype=x.dtype)
        return y.transpose(0, 3, 1, 2), (kh, kw, sh, sw)

    def backward(node, g):
        x = node._parents[0].data
        kh, kw, sh, sw = node._ctx
        xh = x.transpose(0, 2, 3, 1)
        gh = g.transpose(0, 2, 3, 1) * np.asarray(1.0 / (kh * kw), dtype=g.dtype)
        n, ho, wo, c = gh.shape
        if (sh, sw) == (kh, kw):
            blocks = np.broadcast_to(gh[:, :, None, :, None, :], (n, ho, kh, wo, kw, c))
            return (_place(blocks, xh.shape),)
        dxh = np.zeros(xh.shape, dtype=g.dtype)
        for s in _offsets(xh, kh, kw, sh, sw, ho, wo):
            dxh[s] += gh
        return (dxh.transpose(0, 3, 1, 2),)
