"""Numerical stability: every activation at ±1000 and ±1e4, and elementwise ones over the
whole finite range (±max, ±tiny), in float32 and float64, in both engines, finite forward
and backward with numpy silent; exact log-softmax of huge logits."""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager

import numpy as np
import pytest

from tinygrad_edu import Tensor, Value
from tinygrad_edu.activations import SELU_LAMBDA
from tinygrad_edu.losses import binary_cross_entropy_with_logits, cross_entropy
from tinygrad_edu.registry import activation_ops

BIG = [-1e4, -1000.0, -1.0, 0.0, 1.0, 1000.0, 1e4]
VARIANTS = {
    "leaky_relu": [{"alpha": 0.2}],
    "elu": [{"alpha": 0.5}],
    "gelu": [{"approximate": "tanh"}],
}


@contextmanager
def silent_numpy():
    """Fail on any warning and on overflow, division by zero or invalid results.

    (Underflow to 0 is not an error: e^(−1000) is 0 in every float format.)
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            yield


def _cases(kind: str) -> list:
    out = []
    for op in activation_ops():
        if op.kind == kind:
            for params in [{}, *VARIANTS.get(op.name, [])]:
                out.append(pytest.param(op, params, id=op.name + str(params or "")))
    return out


UNARY = _cases("unary")
ALL = UNARY + _cases("tensor")


def test_catalogue_is_complete():
    names = {op.name for op in activation_ops()}
    assert {"identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu",
            "softplus", "silu", "softmax", "log_softmax"} <= names


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("op", "params"), ALL)
def test_tensor_activation_at_huge_inputs(op, params, dtype):
    x = Tensor(np.array([BIG, BIG[::-1]], dtype=dtype), requires_grad=True)
    with silent_numpy():
        y = op(x, **params)
        y.backward(np.ones(y.shape, dtype=dtype))
    assert y.dtype == dtype and x.grad.dtype == dtype
    assert np.all(np.isfinite(y.data)), f"{op.name} forward: {y.data}"
    assert np.all(np.isfinite(x.grad)), f"{op.name} backward: {x.grad}"


def _whole_range(dtype, op=None) -> list[float]:
    """Both ends and the middle of a float format's finite range, and the points where x²
    and x³ overflow; for SELU (slope λ > 1) only inputs whose exact output is finite."""
    info = np.finfo(dtype)
    top = [float(info.max), float(info.max) / 2, float(np.sqrt(info.max)) * 2,
           float(np.cbrt(info.max)) * 2, 1e20, 1e4, 1.0, float(info.tiny), 0.0]
    scale = SELU_LAMBDA if op is not None and op.name == "selu" else 1.0
    return sorted({v for t in top for v in (t, -t) if abs(v) * scale <= float(info.max)})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("op", "params"), UNARY)
def test_tensor_activation_over_the_whole_finite_range(op, params, dtype):
    x = Tensor(np.array(_whole_range(dtype, op), dtype=dtype), requires_grad=True)
    with silent_numpy():
        y = op(x, **params)
        y.backward(np.ones(y.shape, dtype=dtype))
    assert np.all(np.isfinite(y.data)), f"{op.name} forward: {dict(zip(x.data, y.data))}"
    assert np.all(np.isfinite(x.grad)), f"{op.name} backward: {dict(zip(x.data, x.grad))}"
    assert np.all((x.grad >= -0.2) & (x.grad <= 1.8)), f"{op.name}: {x.grad}"  # slopes


@pytest.mark.parametrize(("op", "params"), [c for c in UNARY if c.values[0].scalar])
def test_value_activation_over_the_whole_finite_range(op, params):
    for a in _whole_range(np.float64, op):
        x = Value(a)
        with silent_numpy():
            y = op(x, **params)
            y.backward()
        assert math.isfinite(y.data) and math.isfinite(x.grad), (op.name, a, y.data, x.grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_over_each_half_of_the_finite_range(name, dtype):
    """Rows within one half of the range (their differences stay finite)."""
    half = [v for v in _whole_range(dtype) if v >= 0]
    rows = np.array([half, [-v for v in half]], dtype=dtype)
    x = Tensor(rows, requires_grad=True)
    with silent_numpy():
        y = getattr(x, name)(axis=1)
        y.backward(np.ones(y.shape, dtype=dtype))
    finite = np.isfinite(y.data) if name == "softmax" else y.data > -np.inf
    assert finite.any(axis=1).all() and np.all(np.isfinite(x.grad))


@pytest.mark.parametrize(("op", "params"), [c for c in UNARY if c.values[0].scalar])
def test_value_activation_at_huge_inputs(op, params):
    for a in BIG:
        x = Value(a)
        with silent_numpy():
            y = op(x, **params)
            y.backward()
        assert math.isfinite(y.data) and math.isfinite(x.grad), (op.name, a, y.data, x.grad)


@pytest.mark.parametrize("a", BIG)
def test_value_softmax_family_at_huge_inputs(a):
    xs = [Value(a), Value(-a), Value(0.5 * a)]
    with silent_numpy():
        probs = Value.softmax(xs)
        logs = Value.log_softmax(xs)
        (probs[0] + logs[1]).backward()
    assert all(math.isfinite(v.data) for v in probs + logs)
    assert all(math.isfinite(x.grad) for x in xs)


def _log_softmax_reference(row: list[float]) -> list[float]:
    """log softmax in float64 with a shift and an exactly rounded sum (math.fsum)."""
    m = max(row)
    log_total = math.log(math.fsum(math.exp(v - m) for v in row))
    return [(v - m) - log_total for v in row]


def test_log_softmax_of_1e4_logits_is_exact_float64():
    rng = np.random.default_rng(0)
    logits = 1e4 + rng.uniform(-3.0, 3.0, size=(5, 7))
    logits[0] = [1e4, -1e4, 0.0, 1e4 - 1e-3, 5e3, -5e3, 1e4 + 1.0]
    got = Tensor(logits).log_softmax(axis=-1).data
    ref = np.array([_log_softmax_reference(list(r)) for r in logits])
    np.testing.assert_allclose(got, ref, rtol=4 * np.finfo(np.float64).eps, atol=1e-15)
    # along another axis too
    got0 = Tensor(logits.T.copy()).log_softmax(axis=0).data
    np.testing.assert_allclose(got0, ref.T, rtol=4 * np.finfo(np.float64).eps, atol=1e-15)


def test_log_softmax_of_1e4_logits_float32_and_values():
    rng = np.random.default_rng(1)
    logits32 = (1e4 + rng.uniform(-3.0, 3.0, size=(3, 6))).astype(np.float32)
    got = Tensor(logits32).log_softmax().data
    assert got.dtype == np.float32
    ref = np.array([_log_softmax_reference([float(v) for v in r]) for r in logits32])
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=2e-6)
    row = [1e4, 1e4 + 0.5, 1e4 - 2.0, -1e4]
    values = [v.data for v in Value.log_softmax([Value(a) for a in row])]
    np.testing.assert_allclose(values, _log_softmax_reference(row), rtol=1e-15, atol=1e-15)


def test_softmax_of_1e4_logits_sums_to_one():
    x = Tensor(np.array([[1e4, 1e4 - 1.0, -1e4]]), requires_grad=True)
    with silent_numpy():
        y = x.softmax()
        (y * Tensor(np.array([[1.0, 2.0, 3.0]]))).sum().backward()
    assert y.data.sum() == pytest.approx(1.0, rel=1e-15)
    assert np.all(np.isfinite(x.grad))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_backward_at_minus_1000_is_not_nan(dtype):
    x = Tensor(np.array([-1000.0, 1000.0], dtype=dtype), requires_grad=True)
    with silent_numpy():
        x.sigmoid().sum().backward()
    assert not np.any(np.isnan(x.grad))
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    v = Value(-1000.0)
    v.sigmoid().backward()
    assert v.grad == 0.0
    assert Value(-1000.0).sigmoid().data == 0.0 and Value(1000.0).sigmoid().data == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_of_1000_is_1000(dtype):
    x = Tensor(np.array([1000.0, -1000.0], dtype=dtype), requires_grad=True)
    with silent_numpy():
        y = x.softplus()
        y.sum().backward()
    assert y.data[0] == 1000.0 and y.data[1] == 0.0
    np.testing.assert_array_equal(x.grad, [1.0, 0.0])
    assert Value(1000.0).softplus().data == 1000.0
    assert Value(1e4).softplus().data == 1e4


def test_gelu_and_silu_at_large_negative_inputs_go_to_zero():
    for name in ("gelu", "silu"):
        x = Tensor(np.array([-1000.0]), requires_grad=True)
        with silent_numpy():
            y = getattr(x, name)()
            y.backward(np.ones(1))
        assert abs(y.data[0]) < 1e-300 and abs(x.grad[0]) < 1e-300, name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_from_huge_logits_are_finite(dtype):
    logits = Tensor(np.array([[1e4, -1e4, 0.0], [-1000.0, 1000.0, 999.0]], dtype=dtype),
                    requires_grad=True)
    with silent_numpy():
        loss = cross_entropy(logits, [1, 2])
        loss.backward()
    assert np.isfinite(loss.data) and np.all(np.isfinite(logits.grad))
    assert float(loss.data) == pytest.approx((2e4 + 1.0 + math.log1p(math.exp(-1.0))) / 2,
                                             rel=1e-6)
    z = Tensor(np.array([1000.0, -1000.0, 1e4], dtype=dtype), requires_grad=True)
    with silent_numpy():
        bce = binary_cross_entropy_with_logits(z, np.array([0.0, 1.0, 1.0], dtype=dtype))
        bce.backward()
    assert float(bce.data) == pytest.approx(2000.0 / 3, rel=1e-6)
    assert np.all(np.isfinite(z.grad))
