"""2-D convolution: the ``conv2d`` op (im2col by stride tricks, then one matrix product) and
the :class:`Conv2d` layer.

Interface.  PyTorch's: x is (N, C, H, W), the weight (O, C, kh, kw), the output
(N, O, H', W') with H' = :func:`conv_output_size` (H, kh, stride, padding).  As matrices:
with the patch matrix X_col (N·H'·W', kh·kw·C) whose rows are the receptive fields and the
weight matrix W_mat (kh·kw·C, O), the forward is the one product Y = X_col W_mat + b.

Memory (the speed section at the end of this file).  The arrays are channels-last (NHWC)
in memory: the output is computed as an (N·H'·W', O) matrix and returned as a transposed
**view** of shape (N, O, H', W').  Elementwise ops (ReLU...) keep that memory order,
pooling reads it directly, and the next convolution sees a contiguous NHWC array again, for
which

* the patches are a free strided view ``(N, H', W', kh, kw, C)`` (no data moved), and
* one reshape copies them into the (N·H'·W', kh·kw·C) patch matrix whose rows are
  contiguous, and one GEMM with the (kh·kw·C, O) weight matrix gives every output.

The backward is one GEMM for ∂W = colsᵀ G and, for ∂x, at stride 1 a transposed
convolution one kernel row at a time (one GEMM, then kh shifted adds), else kh·kw small
GEMMs (one per kernel offset, each giving a contiguous block of the patch gradient G Wᵀ)
added onto the shifted input windows (col2im); never a loop over images or pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..numerics import column_sums
from ..ops import index_add
from ..parallel import parallel_parts, parts
from ..registry import tensor_op
from ..tensor import Tensor
from ..workspace import workspace
from . import init as _init
from .module import Module, Parameter, ShapeError, check_int

__all__ = ["Conv2d", "conv2d", "conv_output_size", "pair", "patches"]

IntPair = int | tuple[int, int]


def pair(v: IntPair) -> tuple[int, int]:
    """(v, v) for an int, else the pair itself (as ints)."""
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def checked_pair(who: str, name: str, v: Any, minimum: int) -> tuple[int, int]:
    """A layer's int-or-pair argument, each entry an int >= ``minimum`` (named errors)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{who}: {name} must be an int or a pair, got {v!r}")
        return check_int(who, name, v[0], minimum), check_int(who, name, v[1], minimum)
    value = check_int(who, name, v, minimum)
    return value, value


def fmt_pair(v: tuple[int, int]) -> str:
    """A pair as the user would write it: ``5`` for (5, 5), else ``(5, 3)``."""
    return str(v[0]) if v[0] == v[1] else str(v)


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """The number of window positions along one axis: ⌊(size + 2·padding − kernel)/stride⌋ + 1
    (used by convolution and pooling alike)."""
    return (size + 2 * padding - kernel) // stride + 1


def _check(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, sh: int, sw: int,
           ph: int, pw: int) -> None:
    """Every precondition of a convolution, checked once (the layer relies on it)."""
    if w.ndim != 4:
        raise ValueError(f"conv2d: weight of shape {w.shape}, expected (O, C, kh, kw)")
    if x.ndim != 4 or x.shape[1] != w.shape[1]:
        raise ShapeError("conv2d", f"expected input (N, {w.shape[1]}, H, W), got {x.shape}")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"conv2d: bias of shape {b.shape}, expected ({w.shape[0]},)")
    if sh < 1 or sw < 1:
        raise ValueError(f"conv2d: stride must be >= 1, got {(sh, sw)}")
    if ph < 0 or pw < 0:
        raise ValueError(f"conv2d: padding must be >= 0, got {(ph, pw)}")
    if x.shape[2] + 2 * ph < w.shape[2] or x.shape[3] + 2 * pw < w.shape[3]:
        raise ShapeError("conv2d", f"input {x.shape} is smaller than the kernel "
                                   f"{w.shape[2:]} (after padding {(ph, pw)})")


@tensor_op(f="y[n,o,i,j] = b[o] + Σ_{c,u,v} w[o,c,u,v] · xₚ[n, c, s·i + u, s·j + v]",
           grads=("∂x = col2im(G Wᵀ)   (each patch gradient added back where it was read)",
                  "∂w[o,c,u,v] = Σ_{n,i,j} G[n,o,i,j] · xₚ[n, c, s·i + u, s·j + v]",
                  "∂b[o] = Σ_{n,i,j} G[n,o,i,j]"),
           category="nn", symbol="conv2d", params={"stride": 1, "padding": 0})
class conv2d:
    """2-D cross-correlation (a CNN "convolution") of x (N, C, H, W) with w (O, C, kh, kw),
    plus an optional bias b (O,); xₚ is x zero-padded by ``padding``, ``stride`` s.

    As matrices: with the patch matrix X_col (N·H'·W', kh·kw·C) and W_mat (kh·kw·C, O),
    Y = X_col W_mat + b, so ∂W_mat = X_colᵀ G, ∂b = Σ rows of G, ∂X_col = G W_matᵀ; each
    row of ∂X_col is then added back onto the input positions its patch came from.
    """

    def forward(x, w, b=None, stride=1, padding=0):
        (sh, sw), (ph, pw) = pair(stride), pair(padding)
        _check(x, w, b, sh, sw, ph, pw)
        x = x.astype(w.dtype, copy=False)  # the layer's dtype (see Conv2d)
        n, (o, c, kh, kw) = x.shape[0], w.shape
        ho = conv_output_size(x.shape[2], kh, sh, ph)
        wo = conv_output_size(x.shape[3], kw, sw, pw)
        xp = _padded_nhwc(x, ph, pw)
        wmat = w.transpose(2, 3, 1, 0).reshape(kh * kw * c, o)  # W_mat (kh·kw·C, O)
        out = workspace("conv2d.y", (n * ho * wo, o), w.dtype)
        saved = _patch_product(xp, wmat, out, kh, kw, sh, sw, b)  # out = X_col W_mat + b
        y = out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)  # an NCHW view of NHWC memory
        return y, (saved, wmat, xp.shape, sh, sw, ph, pw)

    def backward(node, g):
        parents = node.parents
        x, w = parents[0], parents[1]
        saved, wmat, padded_shape, sh, sw, ph, pw = node.ctx
        o, c, kh, kw = w.data.shape
        n, _, ho, wo = g.shape
        g2 = g.transpose(0, 2, 3, 1).reshape(n * ho * wo, o)  # G as (N·H'·W', O)
        need_b = len(parents) == 3 and parents[2].requires_grad
        gw, gb = _patch_t_product(saved, g2, kh, kw, sh, sw, w.requires_grad, need_b,
                                  ones=len(parents) == 3)
        if gw is not None:  # ∂W_mat = X_colᵀ G, back to (O, C, kh, kw)
            gw = np.ascontiguousarray(gw.reshape(kh, kw, c, o).transpose(3, 2, 0, 1))
        gx = None
        if x.requires_grad:
            if (sh, sw) == (1, 1) and ph < kh and pw < kw:
                gx = _row_transposed_conv(g, w.data, ph, pw)
            else:
                gx = _col2im(g2, wmat, padded_shape, (n, ho, wo), kh, kw, sh, sw, ph, pw)
            gx = gx.astype(x.data.dtype, copy=False)
        return (gx, gw) if len(parents) == 2 else (gx, gw, gb)

    def backward_graph(node, g):
        """The same products in graph ops; the patch matrix is x gathered at constant
        indices (zero where the padding is), so its adjoint scatters back (``index_add``)."""
        parents = node.parents
        x, w = parents[0], parents[1]
        _, _, _, sh, sw, ph, pw = node.ctx
        o, c, kh, kw = w.data.shape
        n, _, ho, wo = g.data.shape
        g2 = g.transpose(0, 2, 3, 1).reshape(n * ho * wo, o)
        index, inside = col_index(x.data.shape, kh, kw, sh, sw, ph, pw)
        inside = inside.astype(x.data.dtype)
        gx = gw = None
        if w.requires_grad:  # X_colᵀ G, X_col = x[index]·inside (x as a node)
            cols = x.reshape(-1)[index] * inside
            gw = (cols.T @ g2).reshape(kh, kw, c, o).transpose(3, 2, 0, 1)
        if x.requires_grad:  # G W_matᵀ scattered back onto x
            wmat = w.transpose(2, 3, 1, 0).reshape(kh * kw * c, o)
            dcols = (g2 @ wmat.T) * inside
            gx = index_add(dcols, index=index, shape=(x.data.size,)).reshape(x.data.shape)
        if len(parents) == 2:
            return gx, gw
        return gx, gw, g2.sum(axis=0) if parents[2].requires_grad else None


class Conv2d(Module):
    """2-D convolution: (N, in_channels, H, W) -> (N, out_channels, H', W') with
    H' = ⌊(H + 2·padding − kh)/stride⌋ + 1; weight (out, in, kh, kw), bias (out,).

    Weights default to He (kaiming) initialisation, fan_in = in·kh·kw; ``init`` overrides.
    Input errors are the op's checks, reported under the layer's name.  The input is cast
    to the layer's dtype (a float64 batch into a float32 model computes in float32; PyTorch
    raises instead); its gradient keeps the input's dtype.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0,
                 bias: bool = True, init: Any = None, bias_init: float = 0.0,
                 activation: str | None = "relu",
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.in_channels = check_int("Conv2d", "in_channels", in_channels, 1)
        self.out_channels = check_int("Conv2d", "out_channels", out_channels, 1)
        self.kernel_size = checked_pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = checked_pair("Conv2d", "stride", stride, 1)
        self.padding = checked_pair("Conv2d", "padding", padding, 0)
        rng = _init.make_rng(rng)
        shape = (out_channels, in_channels) + self.kernel_size
        self.weight = Parameter(_init.initialise(shape, init, activation, rng))
        bias_value = _init.constant((out_channels,), bias_init)
        self.register_parameter("bias", Parameter(bias_value) if bias else None)

    def forward(self, x: Tensor) -> Tensor:
        try:
            if self.bias is None:
                return conv2d(x, self.weight, stride=self.stride, padding=self.padding)
            return conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)
        except ShapeError as err:
            raise self.input_error(err) from None

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={fmt_pair(self.kernel_size)}"
        if self.stride != (1, 1):
            s += f", stride={fmt_pair(self.stride)}"
        if self.padding != (0, 0):
            s += f", padding={fmt_pair(self.padding)}"
        return s + ("" if self.bias is not None else ", bias=False")


# ------------------------------------------------------------------ speed: channels-last memory
# Everything below is about memory layout, not about the math above: the strided patch
# view (shared with pooling), the NHWC padding, im2col in cache-sized chunks fused with
# their GEMM (with its own path for one input channel), ∂x at stride 1 as a transposed
# convolution along rows, col2im as kh·kw GEMMs onto strided windows otherwise, and a bias
# as a column of ones in the products.  Big arrays come from
# ``tinygrad_edu.workspace``.
# See docs/performance.md for the measurements.
def patches(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """The (N, H', W', kh, kw, C) view of every receptive field of xp (N, Hp, Wp, C): no
    data moved, window (i, j) starts at row s·i, column s·j (used by pooling too)."""
    n, hp, wp, c = xp.shape
    ho, wo = conv_output_size(hp, kh, sh, 0), conv_output_size(wp, kw, sw, 0)
    s_n, s_h, s_w, s_c = xp.strides
    return as_strided(xp, (n, ho, wo, kh, kw, c), (s_n, s_h * sh, s_w * sw, s_h, s_w, s_c),
                      writeable=False)


def col_index(shape: tuple, kh: int, kw: int, sh: int, sw: int, ph: int,
              pw: int) -> tuple[np.ndarray, np.ndarray]:
    """For x (N, C, H, W) flattened, the index of every entry of the patch matrix
    (N·H'·W', kh·kw·C; columns ordered (u, v, c)) and a 0/1 mask that is 0 where the entry
    lies in the zero padding (its index is clipped into x there).  Used by the graph
    backwards of convolution and pooling."""
    n, c, h, w = shape
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    nn_, i, j, u, v, cc = np.ix_(range(n), range(ho), range(wo), range(kh), range(kw),
                                 range(c))
    rows, cols = sh * i + u - ph, sw * j + v - pw
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = ((nn_ * c + cc) * h + np.clip(rows, 0, h - 1)) * w + np.clip(cols, 0, w - 1)
    full = (n, ho, wo, kh, kw, c)
    index = np.broadcast_to(flat, full).reshape(n * ho * wo, kh * kw * c)
    return index, np.broadcast_to(inside, full).reshape(index.shape)


def _padded_nhwc(x: np.ndarray, ph: int, pw: int, tag: str = "conv2d.xp") -> np.ndarray:
    """x (N, C, H, W) as a channels-last array (N, H + 2ph, W + 2pw, C) with zero borders.
    Without padding this is a view when x is channels-last in memory."""
    xh = x.transpose(0, 2, 3, 1)
    if not (ph or pw):
        return xh
    n, h, w, c = xh.shape
    xp = workspace(tag, (n, h + 2 * ph, w + 2 * pw, c), x.dtype)

    def pad(_: int, a: int, b: int) -> None:
        part = xp[a:b]
        part[:, :ph] = 0  # the four borders (a reused array holds stale numbers)
        part[:, ph + h:] = 0
        part[:, ph:ph + h, :pw] = 0
        part[:, ph:ph + h, pw + w:] = 0
        part[:, ph:ph + h, pw:pw + w, :] = xh[a:b]

    parallel_parts(pad, parts(n, xp[0].nbytes))
    return xp


#: Bytes of patch-matrix rows copied and multiplied at a time: small enough to stay in the
#: cache between the copy and the GEMM reading it, few enough chunks (10 for the MNIST CNN's
#: second layer) that multi-threaded BLAS is not kept waiting for its threads at every call.
#: Measured against the whole 40 MB patch matrix at once: forward + ∂W 1.3x faster with one
#: BLAS thread (docs/performance.md).
_CHUNK_BYTES = 4 << 20
#: Rows of the first layer's kept patch matrix (N·H'·W', kh·kw) multiplied at a time for ∂W:
#: one product over all 100,352 rows of the MNIST CNN took 2.1 ms with one BLAS thread,
#: blocks of 2,048 rows 1.25 ms (the same 1.3 ms either way with two threads).
_ROW_BLOCK = 2048


# The products below work in fixed units -- chunks of whole images, blocks of rows -- whose
# bounds depend on the shapes only; the parts (tinygrad_edu.parallel) take whole units, and
# the units' partial sums are added in unit order.  So every BLAS call and every sum is the
# same whatever the number of cores: the same bits on 1, 2 or 16 cores.
def _chunks(n: int, per_image: int, size: int | None = None) -> list[tuple[int, int]]:
    """Consecutive ``(n0, n1)`` ranges of whole images of about ``size`` (default
    ``_CHUNK_BYTES``) bytes each."""
    step = max(1, min(n, (size or _CHUNK_BYTES) // max(per_image, 1)))
    return [(n0, min(n, n0 + step)) for n0 in range(0, n, step)]


def _in_units(units: list, bytes_per_unit: int, work) -> list:
    """``work(i, units[a:b])`` for each part ``i`` of the units, run at the same time; the
    parts' lists of results joined, in unit order."""
    results = parallel_parts(lambda i, a, b: work(i, units[a:b]),
                             parts(len(units), bytes_per_unit))
    return [r for part in results for r in part]


def _ordered_sum(values: list) -> np.ndarray | None:
    """``values[0] + values[1] + ...`` in that order (a new array), or None for none."""
    if not values:
        return None
    total = values[0].copy()
    for v in values[1:]:
        total += v
    return total


def _patch_product(xp: np.ndarray, wmat: np.ndarray, out: np.ndarray, kh: int, kw: int,
                   sh: int, sw: int, bias: np.ndarray | None = None) -> np.ndarray:
    """out = X_col W_mat (+ bias), the patch matrix of xp (N, Hp, Wp, C) times the weight
    matrix; returns what ∂W needs (see :func:`_patch_t_product`).  Chunks of images are
    split over the cores (``tinygrad_edu.parallel``), each writing its own rows of out.

    A bias rides in the product: X_col W_mat + b = [X_col 1] [W_mat; b], one more column of
    ones and one more weight row, so no pass over out adds it (MNIST's first layer: 0.8 ms a
    step saved), and the backward's [X_col 1]ᵀ G gives ∂b as its last row.

    With several input channels X_col is never stored: each chunk's rows are copied into a
    small buffer and multiplied while still in the cache, and xp is returned (∂W copies the
    chunks again).  With one input channel (the first layer) the rows would be only kw
    numbers long, so each kernel offset's window (N, H', W') is copied into row (u, v) of the
    transposed matrix instead; that whole matrix is returned.
    """
    win = patches(xp, kh, kw, sh, sw)
    n, ho, wo, _, _, c = win.shape
    rows = ho * wo
    per_image = rows * kh * kw * c * win.itemsize
    ones = bias is not None
    if ones:
        wmat = np.concatenate([wmat, bias.reshape(1, -1).astype(wmat.dtype, copy=False)])
    cols_t = None
    if c == 1:  # its matrix is kept whole, so its chunks are only the GEMMs' row blocks:
        # smaller ones (13 images for MNIST, not 53) balance the parts better
        cols_t = workspace("conv2d.cols_t", (kh * kw + ones, n * rows), xp.dtype)
        if ones:
            cols_t[-1] = 1
    chunks = _chunks(n, per_image, _CHUNK_BYTES // 4 if c == 1 else None)

    def product(i: int, mine: list) -> list:
        for n0, n1, cols in _patch_rows(win, mine, cols_t, f"conv2d.chunk{i}", ones):
            np.matmul(cols, wmat, out=out[n0 * rows:n1 * rows])
        return []

    _in_units(chunks, per_image * (chunks[0][1] - chunks[0][0]), product)
    return xp if cols_t is None else cols_t.T


def _patch_t_product(saved: np.ndarray, g2: np.ndarray, kh: int, kw: int, sh: int, sw: int,
                     weight: bool = True, bias: bool = False, ones: bool = False) -> tuple:
    """(X_colᵀ G (kh·kw·C, O) if ``weight``, Σ rows of G (O,) if ``bias``), from what
    :func:`_patch_product` returned: the patch matrix itself (one channel: taken a block of
    ``_ROW_BLOCK`` rows at a time), or xp, whose patch rows are copied again chunk by chunk.
    Each unit gives its own sums; they are added in unit order.  ``ones``: the forward had
    a bias, so the patch rows carry a column of ones and [X_col 1]ᵀ G holds ∂b as its last
    row (when the weight's gradient is wanted too)."""
    if not (weight or bias):
        return None, None
    if saved.ndim == 2:
        rows, units = 1, [(r, min(r + _ROW_BLOCK, g2.shape[0]))
                          for r in range(0, g2.shape[0], _ROW_BLOCK)]
        unit_bytes = _ROW_BLOCK * saved.shape[1] * saved.itemsize
        win = None
    else:
        win = patches(saved, kh, kw, sh, sw)
        rows = win.shape[1] * win.shape[2]
        per_image = rows * kh * kw * win.shape[5] * win.itemsize
        units = _chunks(win.shape[0], per_image)
        unit_bytes = per_image * (units[0][1] - units[0][0])

    sums_b = bias and not (weight and ones)  # else ∂b is the product's last row

    def sums(i: int, mine: list) -> list:
        if weight and win is not None:
            blocks = _patch_rows(win, mine, None, f"conv2d.chunk{i}", ones)
        else:  # the kept matrix's rows (or, for ∂b alone, no patches at all)
            blocks = ((n0, n1, saved[n0:n1] if win is None else None) for n0, n1 in mine)
        found = []
        for n0, n1, cols in blocks:
            g_rows = g2[n0 * rows:n1 * rows]
            found.append((cols.T @ g_rows if weight else None,
                          column_sums(g_rows) if sums_b else None))
        return found

    found = _in_units(units, unit_bytes, sums)
    gw = _ordered_sum([w for w, _ in found]) if weight else None
    if weight and ones:  # [X_col 1]ᵀ G: ∂W on top, ∂b the last row
        return gw[:-1], (gw[-1].copy() if bias else None)
    return gw, (_ordered_sum([b for _, b in found]) if bias else None)


def _patch_rows(win: np.ndarray, chunks: list, cols_t: np.ndarray | None, tag: str,
                ones: bool = False):
    """``(n0, n1, X_col rows of images n0..n1)`` for each chunk of the patch view ``win``
    (N, H', W', kh, kw, C): copied into one reused buffer (valid until the next chunk), or,
    with ``cols_t`` (one input channel; (kh·kw [+ 1], N·H'·W')), written into its rows and
    read from there.  ``ones``: the rows end with a column of ones (a bias in the product;
    cols_t's last row is already ones)."""
    _, ho, wo, kh, kw, c = win.shape
    rows = ho * wo
    if cols_t is not None:
        cols = cols_t.T  # BLAS takes the Fortran order as well
        for n0, n1 in chunks:
            for u in range(kh):
                for v in range(kw):
                    target = cols_t[u * kw + v, n0 * rows:n1 * rows]
                    target.reshape(n1 - n0, ho, wo)[...] = win[n0:n1, :, :, u, v, 0]
            yield n0, n1, cols[n0 * rows:n1 * rows]
        return
    most = max(n1 - n0 for n0, n1 in chunks)
    k = kh * kw * c
    buf = workspace(tag, (most * rows, k + ones), win.dtype)
    for n0, n1 in chunks:
        cols = buf[:(n1 - n0) * rows]
        np.copyto(cols[:, :k].reshape((n1 - n0,) + win.shape[1:]), win[n0:n1])
        if ones:
            cols[:, k] = 1
        yield n0, n1, cols


def _col2im(g2: np.ndarray, wmat: np.ndarray, padded_shape: tuple, out_shape: tuple,
            kh: int, kw: int, sh: int, sw: int, ph: int, pw: int) -> np.ndarray:
    """∂x from the output gradient G (N·H'·W', O): ∂X_col = G W_matᵀ, computed one kernel
    offset (u, v) at a time -- the (N·H'·W', C) block G W_mat[u, v]ᵀ is contiguous -- and
    added onto the strided input window that offset read.  (A chunk of images at a time
    keeps the arrays in the cache and is 1.3x faster with one BLAS thread, but its 25 small
    GEMMs per chunk make multi-threaded OpenBLAS wait for its threads hundreds of times a
    step: 1.4x slower with two threads on a busy machine.  Whole-batch blocks it is.)  Returns an (N, C, H, W)-shaped
    view of channels-last memory."""
    n, ho, wo = out_shape
    c = padded_shape[3]
    wblocks = wmat.reshape(kh, kw, c, -1)
    dxp = workspace("conv2d.dx", padded_shape, g2.dtype)
    dxp.fill(0)
    block = workspace("conv2d.dx_block", (n * ho * wo, c), g2.dtype)
    window = block.reshape(n, ho, wo, c)
    h_end, w_end = sh * (ho - 1) + 1, sw * (wo - 1) + 1
    for u in range(kh):
        for v in range(kw):
            np.matmul(g2, wblocks[u, v].T, out=block)
            dxp[:, u:u + h_end:sh, v:v + w_end:sw, :] += window
    hp, wp = padded_shape[1], padded_shape[2]
    return dxp[:, ph:hp - ph, pw:wp - pw, :].transpose(0, 3, 1, 2)


def _row_transposed_conv(g: np.ndarray, w: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """∂x for stride 1, one kernel row at a time:

        ∂x[n,c,y,x] = Σᵤ Tᵤ[n, c, y + ph − u, x],
        Tᵤ[n,c,i,x] = Σ_{v,o} G[n, o, i, x + pw − v] · w[o, c, u, v]   (G = 0 outside),

    Tᵤ being a transposed convolution along x only.  Its patches are windows of kw
    positions of G zero-padded along x by kw−1−pw: rows of kw·O numbers, contiguous in
    channels-last memory.  One GEMM with the (kw·O, kh·C) matrix of the x-flipped kernel
    gives every Tᵤ at once, and kh shifted adds (whole rows of ∂x) sum the kernel rows.
    Against a full transposed convolution (G padded on all four sides, patch rows of
    kh·kw·O numbers): the same multiply-adds for the MNIST CNN's second layer, but a patch
    matrix kh = 5 times smaller to copy, and a GEMM with N = kh·C = 80 instead of C = 16
    (docs/performance.md, "Issue 14, fifth session")."""
    o, c, kh, kw = w.shape
    n, ho = g.shape[0], g.shape[2]
    gp = _padded_nhwc(g, 0, kw - 1 - pw, tag="conv2d.gp")  # (N, H', W + kw − 1, O)
    h, wd = ho + kh - 1 - 2 * ph, gp.shape[2] - kw + 1  # ∂x's height and width
    win = patches(gp, 1, kw, 1, 1)  # (N, H', W, 1, kw, O): G's windows along x
    wx = w[:, :, :, ::-1].transpose(3, 0, 2, 1).reshape(kw * o, kh * c)  # [(v, o), (u, c)]
    wx = wx.astype(g.dtype, copy=False)
    dx = workspace("conv2d.dx", (n, h, wd, c), g.dtype)
    rows = ho * wd
    per_image = rows * (kw * o + kh * c) * dx.itemsize
    chunks = _chunks(n, per_image)

    def rows_of_kernel(i: int, mine: list) -> list:
        t = workspace(f"conv2d.t{i}", (max(b - a for a, b in mine) * rows, kh * c), dx.dtype)
        for n0, n1, cols in _patch_rows(win, mine, None, f"conv2d.chunk{i}"):
            tu = np.matmul(cols, wx, out=t[:(n1 - n0) * rows]).reshape(n1 - n0, ho, wd, kh, c)
            part = dx[n0:n1]
            part.fill(0)
            for u in range(kh):  # ∂x row y gets Tᵤ row y + ph − u, where that row exists
                lo, hi = max(0, u - ph), min(h, u - ph + ho)
                part[:, lo:hi] += tu[:, lo + ph - u:hi + ph - u, :, u]
        return []

    _in_units(chunks, per_image * (chunks[0][1] - chunks[0][0]), rows_of_kernel)
    return dx.transpose(0, 3, 1, 2)
