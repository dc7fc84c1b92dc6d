"""Convolution, pooling, padding and flattening: forward against direct loops, gradients
against central differences (hypothesis draws batch, channels, sizes, kernel, stride,
padding)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from suite_tolerances import gradcheck

import tinygrad_edu.nn.functional as F
from tinygrad_edu import Tensor, nn

TESTED_OPS = {"conv2d", "max_pool2d", "avg_pool2d", "pad", "flatten"}

FAST = settings(max_examples=25, deadline=None)


def t64(a: np.ndarray) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def projected(fn, out_shape_rng: np.random.Generator):
    """fn's output dotted with a fixed random tensor: one backward checks the whole
    vector-Jacobian product against finite differences."""
    cache: dict = {}

    def wrapped(*inputs):
        y = fn(*inputs)
        if "r" not in cache:
            cache["r"] = out_shape_rng.standard_normal(y.shape)
        return (y * Tensor(cache["r"])).sum()

    return wrapped


def reference_conv(x, w, b, stride, padding):
    """Direct definition: a loop over every output position (tests only)."""
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    y = np.zeros((n, o, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return y + (0 if b is None else b[None, :, None, None])


@st.composite
def conv_case(draw):
    n = draw(st.integers(1, 2))
    c = draw(st.integers(1, 3))
    o = draw(st.integers(1, 3))
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    padding = draw(st.integers(0, 2))
    h = draw(st.integers(max(1, k - 2 * padding), 6))
    w = draw(st.integers(max(1, k - 2 * padding), 6))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return n, c, o, k, stride, padding, h, w, bias, seed


@FAST
@given(conv_case())
def test_conv2d_forward_matches_direct_loop(case):
    n, c, o, k, stride, padding, h, w, bias, seed = case
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, k, k))
    b = rng.standard_normal(o) if bias else None
    args = (Tensor(x), Tensor(wt)) + ((Tensor(b),) if bias else ())
    y = F.conv2d(*args, stride=stride, padding=padding)
    np.testing.assert_allclose(y.data, reference_conv(x, wt, b, stride, padding), atol=1e-10)


@FAST
@given(conv_case())
def test_conv2d_gradients(case):
    n, c, o, k, stride, padding, h, w, bias, seed = case
    rng = np.random.default_rng(seed)
    inputs = [t64(rng.standard_normal((n, c, h, w))), t64(rng.standard_normal((o, c, k, k)))]
    if bias:
        inputs.append(t64(rng.standard_normal(o)))
    fn = projected(lambda *a: F.conv2d(*a, stride=stride, padding=padding), rng)
    assert gradcheck(fn, inputs)


def test_conv2d_rectangular_kernel_stride_padding():
    rng = np.random.default_rng(1)
    x, w = t64(rng.standard_normal((2, 2, 7, 5))), t64(rng.standard_normal((3, 2, 3, 2)))
    fn = projected(lambda a, b: F.conv2d(a, b, stride=(2, 1), padding=(1, 0)), rng)
    assert gradcheck(fn, [x, w])


@pytest.mark.parametrize("kernel, padding", [((3, 2), (2, 1)), ((2, 4), (0, 3)),
                                             ((1, 3), (0, 1)), ((4, 1), (3, 0))])
def test_conv2d_input_gradient_rectangular_kernels_at_stride_one(kernel, padding):
    """∂x at stride 1 is a transposed convolution along rows, then kh shifted adds (the
    speed section of conv.py): rectangular kernels with unequal paddings, several channels,
    against central differences."""
    rng = np.random.default_rng(sum(kernel) + 7 * sum(padding))
    x, w = t64(rng.standard_normal((2, 3, 6, 5))), t64(rng.standard_normal((4, 3) + kernel))
    fn = projected(lambda a, b: F.conv2d(a, b, padding=padding), rng)
    assert gradcheck(fn, [x, w])


def test_conv2d_float32_first_layer_path_matches_float64():
    """The single-channel im2col path (transposed patch matrix) gives the same numbers."""
    rng = np.random.default_rng(2)
    x, w, b = rng.random((4, 1, 9, 9)), rng.standard_normal((5, 1, 3, 3)), rng.random(5)
    y32 = F.conv2d(Tensor(x.astype(np.float32)), Tensor(w.astype(np.float32)),
                   Tensor(b.astype(np.float32)), padding=1).data
    np.testing.assert_allclose(y32, reference_conv(x, w, b, 1, 1), rtol=1e-5, atol=1e-5)


def test_conv2d_shape_errors():
    x = Tensor(np.zeros((2, 3, 5, 5)))
    with pytest.raises(ValueError, match="conv2d"):
        F.conv2d(x, Tensor(np.zeros((4, 2, 3, 3))))
    layer = nn.Conv2d(1, 16, 5)
    with pytest.raises(ValueError) as err:
        layer(Tensor(np.zeros((128, 3, 28, 28), dtype=np.float32)))
    assert str(err.value) == (
        "Conv2d(1, 16, kernel_size=5): expected input (N, 1, H, W), got (128, 3, 28, 28)"
    )
    with pytest.raises(ValueError, match="smaller than the kernel"):
        layer(Tensor(np.zeros((1, 1, 3, 3), dtype=np.float32)))


def distinct_values(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Values at least 0.009 apart, shuffled: no ties for max pooling, even after ±eps.
    Centred and small (|x| <= size/200), so the rounding error of central differences,
    ≈ 1e-10·|f|, stays far below the suite's atol of 1e-8."""
    size = int(np.prod(shape))
    return ((rng.permutation(size) - size / 2) * 0.01
            + rng.uniform(0, 0.001, size)).reshape(shape)


@st.composite
def pool_case(draw):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    k = draw(st.integers(1, 3))
    stride = draw(st.sampled_from([None, 1, 2, 3]))
    h, w = draw(st.integers(k, 7)), draw(st.integers(k, 7))
    return n, c, h, w, k, stride, draw(st.integers(0, 2**16))


@FAST
@given(pool_case())
def test_max_pool2d_forward_and_gradients(case):
    n, c, h, w, k, stride, seed = case
    rng = np.random.default_rng(seed)
    x = distinct_values(rng, (n, c, h, w))
    y = F.max_pool2d(Tensor(x), kernel_size=k, stride=stride)
    s = stride or k
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    ref = np.array([[[[x[i, j, a * s:a * s + k, b * s:b * s + k].max() for b in range(wo)]
                      for a in range(ho)] for j in range(c)] for i in range(n)])
    np.testing.assert_array_equal(y.data, ref)
    fn = projected(lambda a: F.max_pool2d(a, kernel_size=k, stride=stride), rng)
    assert gradcheck(fn, [t64(x)])


def test_max_pool2d_ties_give_the_gradient_to_one_input():
    x = Tensor(np.zeros((1, 1, 2, 2)), requires_grad=True)
    F.max_pool2d(x, kernel_size=2).sum().backward()
    assert x.grad.sum() == 1.0 and x.grad[0, 0, 0, 0] == 1.0


def test_max_pool2d_a_nan_wins_its_window_and_gets_the_gradient():
    """As in PyTorch: a window holding a NaN gives NaN, and its gradient goes to the NaN --
    the last one in row-major order when there are several -- not to a number beside it."""
    x = np.arange(32, dtype=np.float64).reshape(1, 2, 4, 4)  # each window's max: bottom right
    x[0, 0, 0, 1] = np.nan  # channel 0, window (0, 0): one NaN
    x[0, 1, 2, 3] = x[0, 1, 3, 2] = np.nan  # channel 1, window (1, 1): two, the last wins
    xt = Tensor(x, requires_grad=True)
    y = F.max_pool2d(xt, kernel_size=2)
    g = np.arange(1.0, 9.0).reshape(1, 2, 2, 2)
    y.backward(g)
    nan = np.isnan(y.data)
    assert nan[0, 0, 0, 0] and nan[0, 1, 1, 1] and nan.sum() == 2
    expected = np.zeros_like(x)
    for c in range(2):
        for i in range(2):
            for j in range(2):
                expected[0, c, 2 * i + 1, 2 * j + 1] = g[0, c, i, j]
    expected[0, 0, 1, 1], expected[0, 0, 0, 1] = 0.0, g[0, 0, 0, 0]
    expected[0, 1, 3, 3], expected[0, 1, 3, 2] = 0.0, g[0, 1, 1, 1]
    np.testing.assert_array_equal(xt.grad, expected)


@FAST
@given(pool_case())
def test_avg_pool2d_forward_and_gradients(case):
    n, c, h, w, k, stride, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    s = stride or k
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    ref = np.array([[[[x[i, j, a * s:a * s + k, b * s:b * s + k].mean() for b in range(wo)]
                      for a in range(ho)] for j in range(c)] for i in range(n)])
    np.testing.assert_allclose(F.avg_pool2d(Tensor(x), kernel_size=k, stride=stride).data, ref)
    fn = projected(lambda a: F.avg_pool2d(a, kernel_size=k, stride=stride), rng)
    assert gradcheck(fn, [t64(x)])


@FAST
@given(st.integers(1, 2), st.integers(1, 2), st.integers(1, 4), st.integers(1, 4),
       st.integers(0, 2), st.integers(0, 2), st.integers(0, 2**16))
def test_pad_forward_and_gradients(n, c, h, w, ph, pw, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    y = F.pad(Tensor(x), (ph, pw))
    assert y.shape == (n, c, h + 2 * ph, w + 2 * pw)
    np.testing.assert_array_equal(y.data[:, :, ph:ph + h, pw:pw + w], x)
    assert np.abs(y.data).sum() == pytest.approx(np.abs(x).sum())
    assert gradcheck(projected(lambda a: F.pad(a, (ph, pw)), rng), [t64(x)])


@FAST
@given(st.lists(st.integers(1, 3), min_size=2, max_size=4), st.integers(0, 3))
def test_flatten_forward_and_gradients(shape, start):
    start = min(start, len(shape) - 1)
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    y = F.flatten(Tensor(x), start_dim=start)
    assert y.shape == tuple(shape[:start]) + (int(np.prod(shape[start:])),)
    assert gradcheck(projected(lambda a: F.flatten(a, start_dim=start), rng), [t64(x)])


def test_conv_pool_layers_compose_and_backprop():
    """Channels-last views flow through ReLU, pooling, flatten and linear correctly."""
    rng = np.random.default_rng(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3, padding=1, rng=1), nn.Tanh(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Linear(6 * 2 * 2, 3, rng=2))
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    x = t64(rng.standard_normal((2, 1, 8, 8)))
    params = model.parameters()
    assert gradcheck(lambda a, *ps: model(a).sum(), [x, *params])
    assert model(x).shape == (2, 3)


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 2)])
def test_conv_in_chunks_of_one_image(monkeypatch, stride, padding):
    """The forward and ∂W copy and multiply the patches a chunk of images at a time (the
    speed section of conv.py); with chunks of a single image they agree with central
    differences and give the same result as one chunk for the whole batch."""
    from tinygrad_edu.nn import conv as conv_module

    rng = np.random.default_rng(4)
    x, w, b = t64(rng.standard_normal((3, 2, 7, 6))), t64(rng.standard_normal((4, 2, 3, 3))), \
        t64(rng.standard_normal(4))
    r = rng.standard_normal((3, 4) + (F.conv2d(x, w, stride=stride, padding=padding).shape[2:]))

    def fn(x, w, b):
        return (F.conv2d(x, w, b, stride=stride, padding=padding) * Tensor(r)).sum()

    fn(x, w, b).backward()
    whole = [x.grad.copy(), w.grad.copy(), b.grad.copy()]
    monkeypatch.setattr(conv_module, "_CHUNK_BYTES", 1)
    for t in (x, w, b):
        t.grad = None
    fn(x, w, b).backward()
    for t, g in zip((x, w, b), whole):
        np.testing.assert_allclose(t.grad, g, rtol=1e-12, atol=1e-13)
    assert gradcheck(fn, [x, w, b])


@pytest.mark.parametrize("channels", [1, 3])  # the kept-matrix path and the chunked one
@pytest.mark.parametrize("frozen", ["w", "b", "x"])
def test_conv_bias_in_the_product_with_some_inputs_frozen(channels, frozen):
    """The bias rides in the patch product as a column of ones, and ∂b comes out as the last
    row of ∂W's product: each gradient is the same when another input needs none."""
    rng = np.random.default_rng(7)
    arrays = {"x": rng.standard_normal((2, channels, 6, 5)),
              "w": rng.standard_normal((4, channels, 3, 3)), "b": rng.standard_normal(4)}
    r = rng.standard_normal((2, 4, 6, 5))

    def grads(frozen_name):
        ts = {k: Tensor(v, requires_grad=k != frozen_name) for k, v in arrays.items()}
        (F.conv2d(ts["x"], ts["w"], ts["b"], padding=1) * Tensor(r)).sum().backward()
        return {k: t.grad for k, t in ts.items()}

    every, some = grads(None), grads(frozen)
    assert some[frozen] is None
    for k in arrays:
        if k != frozen:
            np.testing.assert_allclose(some[k], every[k], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(every["b"], r.sum(axis=(0, 2, 3)), rtol=1e-13)  # ∂b = Σ G
