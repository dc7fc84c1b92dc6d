"""Tests that catch what they claim (issue 13, section 5).

* The suite's gradient checks (``suite_tolerances.gradcheck``, rtol 1e-6 / atol 1e-8) catch a
  formula that is wrong by 1e-5 relative -- every registry op's, in both engines -- while
  ``gradcheck``'s user defaults (rtol 1e-3) would not.
* Max-pool backward, which writes into ``np.empty`` when the windows tile the input, is
  compared with an independent loop on cropped and exact shapes, right after the heap was
  filled with NaN (so an element it forgot to write would show).
* dtypes: float32 leaves meeting float64 inputs get float32 gradients (the cast of each
  gradient to its parent's dtype), with the values of a float64 reference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from suite_tolerances import ATOL, RTOL
from suite_tolerances import gradcheck as suite_gradcheck

from tinygrad_edu import REGISTRY, Tensor, Value, nn
from tinygrad_edu.activations import SELU_ALPHA, SELU_LAMBDA
from tinygrad_edu.nn import pooling
from tinygrad_edu.registry import ONE, Binary, Unary, unary
from tinygrad_edu.testing import GradcheckError, gradcheck

ERROR = 1e-5  # the relative formula error the suite must catch


def _scaled(fn, factor: float):
    """A local-gradient function (or the constant ONE) multiplied by ``factor``."""
    if fn is ONE:
        return lambda m, *args, **params: factor + 0.0 * args[0]
    return lambda m, *args, **params: fn(m, *args, **params) * factor


def _points(op) -> np.ndarray:
    """Inputs inside the op's domain, at least 0.2 away from its kinks."""
    lo, hi = op.domain
    xs = np.linspace(lo, hi, 9)
    return np.array([x for x in xs if all(abs(x - k) > 0.2 for k in op.kinks)])


UNARY = [op for op in REGISTRY.values() if op.kind == "unary"]
BINARY = [op for op in REGISTRY.values() if op.kind == "binary"]


@pytest.mark.parametrize("op", UNARY, ids=lambda o: o.name)
def test_a_unary_formula_off_by_1e5_relative_is_caught(op) -> None:
    wrong = Unary(op.name, op.f, _scaled(op.df, 1 + ERROR), category=op.category,
                  f_text=op.f_text, grad_texts=op.grad_texts, params=op.params,
                  domain=op.domain, kinks=op.kinks, scalar=op.scalar, register=False)
    x = Tensor(_points(op), dtype=np.float64)
    assert suite_gradcheck(lambda t: op(t), [x])  # the true formula passes
    with pytest.raises(GradcheckError):
        suite_gradcheck(lambda t: wrong(t), [x])
    assert gradcheck(lambda t: wrong(t), [x])  # the user defaults (rtol 1e-3) would miss it
    if op.scalar:
        v = Value(float(x.data[len(x.data) // 2]) if op.name != "identity" else 0.7)
        with pytest.raises(GradcheckError):
            suite_gradcheck(lambda t: wrong(t), [v])


@pytest.mark.parametrize("side", ["da", "db"])
@pytest.mark.parametrize("op", BINARY, ids=lambda o: o.name)
def test_a_binary_formula_off_by_1e5_relative_is_caught(op, side) -> None:
    da = _scaled(op.da, 1 + ERROR) if side == "da" else op.da
    db = _scaled(op.db, 1 + ERROR) if side == "db" else op.db
    wrong = Binary(op.name, op.f, da, db, category=op.category, f_text=op.f_text,
                   grad_texts=op.grad_texts, domain=op.domain, register=False)
    lo, hi = op.domain
    a = Tensor(np.linspace(lo, hi, 5), dtype=np.float64)
    b = Tensor(np.linspace(hi, lo, 5) + 0.25, dtype=np.float64)
    assert suite_gradcheck(lambda s, t: op(s, t), [a, b])
    with pytest.raises(GradcheckError, match=f"input {0 if side == 'da' else 1}"):
        suite_gradcheck(lambda s, t: wrong(s, t), [a, b])


def test_selu_with_a_rounded_alpha_is_caught() -> None:
    """The mutation the issue found: α rounded to 1.673 in SELU's df (1.6e-4 relative)."""

    @unary(f="selu", df="λα eˣ with α = 1.673", register=False)
    class rounded_selu:
        def f(m, x):
            return REGISTRY["selu"].f(m, x)

        def df(m, x, y):
            return SELU_LAMBDA * m.where(x > 0, 1.0, 1.673 * m.exp(m.minimum(x, 0)))

    x = Tensor(np.array([-2.0, -0.5, 0.7]), dtype=np.float64)
    with pytest.raises(GradcheckError):
        suite_gradcheck(lambda t: rounded_selu(t), [x])
    assert abs(1.673 / SELU_ALPHA - 1) > ERROR  # the mutation is larger than what we catch


def test_suite_tolerances_are_the_float64_ones() -> None:
    assert RTOL <= 1e-6 and ATOL <= 1e-8
    assert gradcheck.__defaults__[1:] == (1e-5, 1e-3)  # the users' defaults stay PyTorch's


# ------------------------------------------------------------------ max-pool and np.empty
def _garbage(shape: tuple, dtype) -> np.ndarray:
    """What an uninitialised array may hold: NaN for floats, the largest value for
    integers, True for booleans (an op that leaves an element unwritten then shows it)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.full(shape, np.nan, dtype)
    if dtype.kind == "b":
        return np.ones(shape, dtype)
    return np.full(shape, np.iinfo(dtype).max, dtype)


@pytest.fixture
def poisoned_workspace(monkeypatch) -> list[str]:
    """Every buffer max pooling asks the workspace for comes filled with garbage (the tags
    asked for are recorded): the same contract as ``np.empty``, at its worst, every time,
    whatever malloc's free lists hold."""
    tags: list[str] = []

    def workspace(tag: str, shape: tuple, dtype) -> np.ndarray:
        tags.append(tag)
        return _garbage(shape, dtype)

    monkeypatch.setattr(pooling, "workspace", workspace)
    return tags


def _maxpool_grad_reference(x: np.ndarray, g: np.ndarray, k: int) -> np.ndarray:
    """∂x of max pooling (kernel = stride = k), by loops: each window's upstream goes to
    its first maximum in row-major order; inputs in no window (the crop) get 0."""
    out = np.zeros_like(x)
    n, c, h, w = x.shape
    for a in range(n):
        for ch in range(c):
            for i in range(h // k):
                for j in range(w // k):
                    win = x[a, ch, i * k:(i + 1) * k, j * k:(j + 1) * k]
                    u, v = np.unravel_index(int(np.argmax(win)), win.shape)
                    out[a, ch, i * k + u, j * k + v] += g[a, ch, i, j]
    return out


@pytest.mark.parametrize("hw", [(4, 4), (5, 5), (7, 6), (6, 9), (3, 8)])
@pytest.mark.parametrize("k", [2, 3])
def test_max_pool_backward_on_a_poisoned_workspace(hw, k, poisoned_workspace) -> None:
    h, w = hw
    if h < k or w < k:
        pytest.skip("smaller than the kernel")
    rng = np.random.default_rng(h * 10 + w + k)
    for trial in range(5):
        x = rng.standard_normal((2, 3, h, w))
        t = Tensor(x, requires_grad=True)
        y = nn.max_pool2d(t, kernel_size=k)
        g = rng.standard_normal(y.shape)
        y.backward(g)
        np.testing.assert_array_equal(t.grad, _maxpool_grad_reference(x, g, k))


def test_the_poison_reaches_the_max_pool_buffers(poisoned_workspace) -> None:
    """The test above sees garbage where an element is left unwritten: forward and backward
    take their buffers (the output, the winners, the input's gradient) from the poisoned
    workspace."""
    t = Tensor(np.random.default_rng(0).standard_normal((2, 3, 5, 5)), requires_grad=True)
    nn.max_pool2d(t, kernel_size=2).sum().backward()
    assert {"max_pool2d.y", "max_pool2d.arg", "max_pool2d.dx"} <= set(poisoned_workspace)
    assert np.isfinite(t.grad).all()


# ------------------------------------------------------------------ dtypes
def test_a_float32_leaf_times_a_float64_input_gets_a_float32_gradient() -> None:
    w32 = Tensor(np.array([0.5, -1.5, 2.0], dtype=np.float32), requires_grad=True)
    c64 = Tensor(np.array([1e-3, 3.0, -7.25]))  # float64
    y = (w32 * c64 + c64 / 3.0).sum()
    assert y.dtype == np.float64  # numpy's promotion, as PyTorch's
    y.backward()
    assert w32.grad.dtype == np.float32
    np.testing.assert_allclose(w32.grad, c64.data, rtol=1e-7)


@pytest.mark.parametrize("op", ["matmul", "linear", "conv2d", "mean", "softmax", "max"])
def test_tensor_op_gradients_are_cast_to_their_inputs_dtype(op) -> None:
    rng = np.random.default_rng(0)
    x64 = Tensor(rng.standard_normal((2, 3)))
    w32 = Tensor(rng.standard_normal((3, 3)).astype(np.float32), requires_grad=True)
    w64 = Tensor(w32.data.astype(np.float64), requires_grad=True)

    def run(w: Tensor) -> Tensor:
        if op == "matmul":
            return x64 @ w
        if op == "linear":
            return nn.linear(x64, w)
        if op == "conv2d":
            return nn.conv2d(Tensor(rng.standard_normal((1, 1, 4, 4))), w.reshape(1, 1, 3, 3))
        return getattr(w * x64[0:1], op)(axis=-1) if op != "mean" else (w * x64[0:1]).mean()

    for w in (w32, w64):
        rng = np.random.default_rng(1)
        out = run(w)
        out.backward(np.linspace(-1, 2, out.size).reshape(out.shape))
    assert w32.grad.dtype == np.float32
    np.testing.assert_allclose(w32.grad, w64.grad, rtol=1e-5, atol=1e-6)


def test_float32_leaves_with_python_and_float64_constants() -> None:
    x = Tensor(np.array([0.25, 1.5], dtype=np.float32), requires_grad=True)
    y = (x * 0.1 + 2.0) ** 2.0  # Python numbers keep float32
    assert y.dtype == np.float32
    z = (y * np.float64(3.0)).sum() + (x * np.array([1.0, 2.0])).sum()  # float64 arrays
    z.backward()
    assert x.grad.dtype == np.float32
    expected = 3.0 * 2.0 * (x.data.astype(np.float64) * 0.1 + 2.0) * 0.1 + np.array([1.0, 2.0])
    np.testing.assert_allclose(x.grad, expected, rtol=1e-6)
    assert not math.isnan(float(x.grad.sum()))
