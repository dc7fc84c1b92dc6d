"""The scalar engine's API: operators, reflected operators, pow, methods, repr, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_edu import REGISTRY, Tensor, Value
from tinygrad_edu.registry import activation_ops


def test_micrograd_style_example():
    x, w, b = Value(2.0, label="x"), Value(-3.0, label="w"), Value(6.88, label="b")
    y = (x * w + b).tanh()
    y.backward()
    t = math.tanh(2.0 * -3.0 + 6.88)
    assert y.data == pytest.approx(t, rel=1e-15)
    assert x.grad == pytest.approx((1 - t * t) * -3.0, rel=1e-14)
    assert w.grad == pytest.approx((1 - t * t) * 2.0, rel=1e-14)
    assert b.grad == pytest.approx(1 - t * t, rel=1e-14)


@pytest.mark.parametrize(
    ("expr", "value", "grad"),
    [
        (lambda v: 2 + v, 5.0, 1.0),
        (lambda v: 2 - v, -1.0, -1.0),
        (lambda v: 2 * v, 6.0, 2.0),
        (lambda v: 2 / v, 2 / 3, -2 / 9),
        (lambda v: 2**v, 8.0, 8.0 * math.log(2.0)),
        (lambda v: v + 2, 5.0, 1.0),
        (lambda v: v - 2, 1.0, 1.0),
        (lambda v: v * 2, 6.0, 2.0),
        (lambda v: v / 2, 1.5, 0.5),
        (lambda v: v**2, 9.0, 6.0),
        (lambda v: -v, -3.0, -1.0),
        (lambda v: 2.5 + v, 5.5, 1.0),
        (lambda v: np.float64(2.0) * v, 6.0, 2.0),
        (lambda v: np.float32(2.0) + v, 5.0, 1.0),
        (lambda v: True * v, 3.0, 1.0),
    ],
)
def test_operators_and_reflected_operators_with_numbers(expr, value, grad):
    v = Value(3.0)
    y = expr(v)
    assert isinstance(y, Value)
    assert y.data == pytest.approx(value, rel=1e-15)
    y.backward()
    assert v.grad == pytest.approx(grad, rel=1e-14)


def test_pow_with_number_exponents():
    for p, expected_grad in [(3, 3 * 4.0), (0.5, 0.5 / math.sqrt(2.0)), (-1, -1 / 4.0),
                             (0, 0.0), (1, 1.0)]:
        v = Value(2.0)
        y = v**p
        y.backward()
        assert y.data == pytest.approx(2.0**p, rel=1e-15)
        assert v.grad == pytest.approx(expected_grad, rel=1e-14)


def test_negative_base_with_integer_number_exponent():
    v = Value(-2.0)
    y = v**3
    y.backward()
    assert y.data == -8.0
    assert v.grad == 12.0
    with pytest.raises(ValueError, match="negative base"):
        Value(-2.0) ** 0.5


def test_pow_with_value_exponent():
    a, b = Value(2.0), Value(3.0)
    y = a**b
    y.backward()
    assert y.data == 8.0
    assert a.grad == pytest.approx(3.0 * 4.0, rel=1e-15)
    assert b.grad == pytest.approx(8.0 * math.log(2.0), rel=1e-15)


def test_negative_base_with_value_exponent_is_a_value_error():
    with pytest.raises(ValueError, match="base"):
        Value(-2.0) ** Value(2.0)
    with pytest.raises(ValueError, match="base"):
        (-2.0) ** Value(2.0)


@pytest.mark.parametrize("exponent", [2.0, 0.5, 1.0])
def test_zero_to_a_value_power_has_finite_gradients(exponent):
    b = Value(exponent)
    y = 0 ** b
    y.backward()
    assert y.data == 0.0
    assert b.grad == 0.0  # d(0^b)/db = ln(0)·0^b, taken as 0 (0^b is 0 for all b > 0)
    base = Value(0.0)
    z = base ** Value(2.0)
    z.backward()
    assert z.data == 0.0 and base.grad == 0.0


def test_exp_log_sqrt_abs():
    v = Value(4.0)
    for name, value, grad in [("exp", math.exp(4.0), math.exp(4.0)), ("log", math.log(4.0), 0.25),
                              ("sqrt", 2.0, 0.25), ("abs", 4.0, 1.0)]:
        v.zero_grad()
        y = getattr(v, name)()
        y.backward()
        assert y.data == pytest.approx(value, rel=1e-15), name
        assert v.grad == pytest.approx(grad, rel=1e-15), name
    w = Value(-4.0)
    y = w.abs()
    y.backward()
    assert y.data == 4.0 and w.grad == -1.0
    with pytest.raises(ValueError, match="log"):
        Value(-1.0).log()
    with pytest.raises(ValueError, match="sqrt"):
        Value(-1.0).sqrt()


def test_every_scalar_activation_and_math_op_is_a_method():
    for op in REGISTRY.values():
        if op.category not in ("math", "activation") or op.kind != "unary" or not op.scalar:
            continue
        v = Value(0.7)
        method = getattr(v, op.name)
        assert method().data == op(Value(0.7)).data, op.name
        assert method.__doc__ and op.f_text in method.__doc__
    assert {"sigmoid", "tanh", "relu", "gelu", "softplus", "silu", "selu", "elu", "leaky_relu",
            "identity"} <= {op.name for op in activation_ops() if hasattr(Value, op.name)}


def test_activation_parameters_on_values():
    assert Value(-2.0).leaky_relu(0.2).data == pytest.approx(-0.4, rel=1e-15)
    assert Value(-2.0).leaky_relu(alpha=0.2).data == pytest.approx(-0.4, rel=1e-15)
    assert Value(-1.0).elu(alpha=2.0).data == pytest.approx(2.0 * math.expm1(-1.0), rel=1e-15)
    g_exact = Value(1.0).gelu().data
    g_tanh = Value(1.0).gelu(approximate="tanh").data
    assert g_exact == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))), rel=1e-15)
    assert g_tanh != g_exact and g_tanh == pytest.approx(g_exact, abs=1e-3)
    with pytest.raises(ValueError, match="approximate"):
        Value(1.0).gelu(approximate="fast")
    with pytest.raises(TypeError, match="unknown parameter"):
        Value(1.0).leaky_relu(beta=0.1)


def test_relu_derivative_at_zero_is_zero():
    v = Value(0.0)
    v.relu().backward()
    assert v.grad == 0.0


def test_softmax_and_log_softmax_of_values():
    xs = [Value(1.0), Value(2.0), Value(-0.5)]
    probs = Value.softmax(xs)
    assert sum(p.data for p in probs) == pytest.approx(1.0, rel=1e-15)
    logs = Value.log_softmax(xs)
    for p, lp in zip(probs, logs):
        assert lp.data == pytest.approx(math.log(p.data), rel=1e-14)
    logs[0].backward()  # d log p0 / d x_j = δ0j − p_j
    for j, x in enumerate(xs):
        assert x.grad == pytest.approx((j == 0) - probs[j].data, rel=1e-13)


def test_repr_and_label():
    v = Value(2.5, label="weight")
    assert v.label == "weight"
    r = repr(v)
    assert r.startswith("Value(") and "2.5" in r and "grad=0" in r and "'weight'" in r
    (v * 2).backward()
    assert "grad=2" in repr(v)
    assert "label" not in repr(Value(1.0))
    assert Value(1.0).label == ""


def test_data_is_float_even_for_ints_and_numpy_numbers():
    assert Value(3).data.__class__ is float
    assert Value(np.float32(1.5)).data.__class__ is float
    assert Value(np.int64(2)).data == 2.0
    assert (Value(1.0) + 1).data.__class__ is float


@pytest.mark.parametrize("bad", ["1.0", None, [1.0], object(), 1 + 2j])
def test_non_numeric_data_is_a_type_error(bad):
    with pytest.raises(TypeError):
        Value(bad)


@pytest.mark.parametrize("bad", ["a", None, [1.0], object(), 1j])
def test_non_numeric_operands_are_a_type_error(bad):
    v = Value(1.0)
    for op in (lambda: v + bad, lambda: bad + v, lambda: v * bad, lambda: bad * v,
               lambda: v - bad, lambda: v / bad, lambda: bad / v, lambda: v**bad):
        with pytest.raises(TypeError):
            op()


def test_value_mixed_with_tensor_is_a_type_error():
    v, t = Value(1.0), Tensor(np.ones(2))
    for op in (lambda: v + t, lambda: t + v, lambda: v * t, lambda: t * v, lambda: t - v,
               lambda: v / t, lambda: v**t, lambda: t**v):
        with pytest.raises(TypeError):
            op()
    with pytest.raises(TypeError):
        Tensor(v)
    with pytest.raises(TypeError):
        REGISTRY["add"](v, t)

