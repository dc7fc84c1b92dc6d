"""The tensor engine's API: dtypes, broadcasting, numpy interplay, shapes and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu import REGISTRY, Tensor, Value, no_grad
from tinygrad_edu.losses import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    nll_loss,
)

# Parameter variants of the elementwise ops run in float32 below (same as the gradient tests).
VARIANTS = {
    "leaky_relu": [{"alpha": 0.2}],
    "elu": [{"alpha": 0.5}],
    "gelu": [{"approximate": "tanh"}],
    "clip": [{"lo": -0.5, "hi": 2.0}],
    "pow_const": [{"p": 3.0}, {"p": 0.5}, {"p": -1.5}],
}

# numpy must stay silent in everything below (no overflow, no division by zero)
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def _inputs_for(op, shape=(2, 3), dtype=np.float32):
    lo, hi = op.domain
    return np.linspace(lo + 0.05, hi - 0.05, int(np.prod(shape))).reshape(shape).astype(dtype)


# ------------------------------------------------------------------ construction, dtypes
def test_default_dtype_is_float32():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor([[0.5], [1.5]]).dtype == np.float32
    assert Tensor(1.5).dtype == np.float32
    assert Tensor(np.ones(3, dtype=np.float32)).dtype == np.float32


def test_float64_is_kept():
    t = Tensor(np.ones(3))
    assert t.dtype == np.float64
    assert (t * 2 + 1).dtype == np.float64
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("data", [[1, 2, 3], np.arange(3), np.arange(3, dtype=np.int8),
                                  np.arange(3, dtype=np.uint16)])
def test_integer_input_becomes_float32(data):
    t = Tensor(data)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.data, np.asarray(data, dtype=np.float32))


def test_bool_input_needs_an_explicit_dtype():
    """A mask silently turned into 0/1 floats indexes the wrong elements (issue 13)."""
    with pytest.raises(TypeError, match="boolean data"):
        Tensor(np.array([True, False]))
    t = Tensor(np.array([True, False]), dtype=np.float32)
    np.testing.assert_array_equal(t.data, [1.0, 0.0])


def test_explicit_dtype_and_bad_dtype():
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert Tensor(np.ones(2), dtype=np.float32).dtype == np.float32
    with pytest.raises(TypeError, match="float32 or float64"):
        Tensor([1, 2], dtype=np.int32)


@pytest.mark.parametrize("bad", [["a", "b"], "text", [object()], np.array([1, "x"], dtype=object),
                                 [1 + 2j], np.array(["1.0"]), None])
def test_tensor_of_non_numbers_is_a_type_error(bad):
    with pytest.raises(TypeError):
        Tensor(bad)


def test_array_facts_and_numpy_shares_memory():
    a = np.arange(6.0).reshape(2, 3)
    t = Tensor(a, requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert t.numpy() is a and t.data is a
    assert t.requires_grad and t.grad is None and t.is_leaf
    assert Tensor(np.array(3.5)).item() == 3.5
    with pytest.raises(ValueError, match="more than one"):
        t.item()


def test_repr_label_and_requires_grad_propagation():
    x = Tensor([1.0, 2.0], requires_grad=True, label="x")
    c = Tensor([3.0, 4.0])
    y = x * c
    assert "float32" in repr(x) and "requires_grad=True" in repr(x) and "'x'" in repr(x)
    assert "op=mul" in repr(y)
    assert y.requires_grad and not (c * c).requires_grad
    assert not c.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])
    assert c.grad is None  # no gradient is computed for inputs that do not require it


# ------------------------------------------------------------------ float32 everywhere
def _unary_cases():
    cases = []
    for op in REGISTRY.values():
        if op.kind == "unary":
            for params in [{}, *VARIANTS.get(op.name, [])]:
                cases.append(pytest.param(op, params, id=op.name + str(params or "")))
    return cases


@pytest.mark.parametrize(("op", "params"), _unary_cases())
def test_float32_stays_float32_through_every_unary_op(op, params):
    x = Tensor(_inputs_for(op), requires_grad=True)
    y = op(x, **params)
    assert y.dtype == np.float32, f"{op.name} forward gave {y.dtype}"
    y.backward(np.ones(y.shape, dtype=np.float32))
    assert x.grad.dtype == np.float32, f"{op.name} backward gave {x.grad.dtype}"
    assert np.all(np.isfinite(x.grad))
    if op.category in ("math", "activation"):  # the method form exists and agrees
        np.testing.assert_array_equal(getattr(x, op.name)(**params).data, y.data)


@pytest.mark.parametrize("op", [op for op in REGISTRY.values() if op.kind == "binary"],
                         ids=lambda op: op.name)
def test_float32_stays_float32_through_every_binary_op(op):
    a = Tensor(_inputs_for(op, (2, 3)), requires_grad=True)
    b = Tensor(np.array([0.7, 1.3, 2.1], dtype=np.float32), requires_grad=True)
    for y in (op(a, b), op(a, 1.5), op(1.5, b)):
        assert y.dtype == np.float32, op.name
    y = op(a, b)
    y.backward(np.ones(y.shape, dtype=np.float32))
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32


def _tensor_op_cases():
    rng = np.random.default_rng(0)

    def x(*shape):
        return Tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)

    labels = np.array([0, 2, 1])
    return {
        "sum": lambda t: t.sum(axis=1),
        "mean": lambda t: t.mean(axis=(0, 1), keepdims=True),
        "max": lambda t: t.max(axis=0),
        "reshape": lambda t: t.reshape(4, 3),
        "transpose": lambda t: t.transpose(1, 0),
        "getitem": lambda t: t[[0, 0, 2], 1:],
        "matmul": lambda t: t @ x(4, 2),
        "batched matmul": lambda t: x(2, 1, 3) @ t,
        "softmax": lambda t: t.softmax(axis=0),
        "log_softmax": lambda t: t.log_softmax(),
        "cross_entropy": lambda t: cross_entropy(t, labels),
        "nll_loss": lambda t: nll_loss(t.log_softmax(), labels),
        "mse_loss": lambda t: mse_loss(t, np.zeros((3, 4), dtype=np.float32)),
        "bce": lambda t: binary_cross_entropy_with_logits(t, np.ones((3, 4), dtype=np.float32)),
        "pow number": lambda t: t**2,
        "scalar arithmetic": lambda t: 2.0 * t / 3.0 - 1.0 + (1 - t),
    }, x


@pytest.mark.parametrize("name", list(_tensor_op_cases()[0]))
def test_float32_stays_float32_through_tensor_ops(name):
    cases, make = _tensor_op_cases()
    t = make(3, 4)
    y = cases[name](t)
    assert y.dtype == np.float32, f"{name} forward gave {y.dtype}"
    y.backward(np.ones(y.shape, dtype=np.float32))
    assert t.grad.dtype == np.float32, f"{name} backward gave {t.grad.dtype}"


# ------------------------------------------------------------------ broadcasting
def test_broadcast_gradients_are_reduced_to_each_input_shape():
    a = Tensor(np.arange(3.0).reshape(3, 1), requires_grad=True)
    b = Tensor(np.arange(4.0), requires_grad=True)
    c = Tensor(np.array(2.0), requires_grad=True)
    y = a * b + c
    assert y.shape == (3, 4)
    y.sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,) and c.grad.shape == ()
    np.testing.assert_array_equal(a.grad, np.full((3, 1), 6.0))  # Σ b
    np.testing.assert_array_equal(b.grad, np.full(4, 3.0))  # Σ a
    assert c.grad == 12.0


def test_broadcast_against_python_scalars_keeps_shape_and_dtype():
    a = Tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    y = 3 * a + 1
    y.sum().backward()
    np.testing.assert_array_equal(a.grad, np.full((2, 2), 3.0, dtype=np.float32))


# ------------------------------------------------------------------ numpy interplay
@pytest.mark.parametrize(
    "expr",
    [lambda n, t: n + t, lambda n, t: n - t, lambda n, t: n * t, lambda n, t: n / t,
     lambda n, t: n**t, lambda n, t: n @ t],
    ids=["add", "sub", "mul", "div", "pow", "matmul"],
)
def test_numpy_array_on_the_left_gives_a_tensor(expr):
    n = np.full(3, 2.0)
    t = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = expr(n, t)
    assert isinstance(y, Tensor)
    assert y.data.dtype == np.float64  # never an object array
    np.testing.assert_allclose(y.data, expr(n, t.data))
    y.sum().backward()
    assert t.grad.shape == (3,)


def test_numpy_scalar_on_the_left_gives_a_tensor():
    t = Tensor(np.ones(2, dtype=np.float32))
    for y in (np.float64(2.0) * t, np.float32(2.0) + t, np.int64(3) - t):
        assert isinstance(y, Tensor) and y.dtype.kind == "f"


# ------------------------------------------------------------------ shapes
def test_reshape_transpose_and_indexing_forms():
    t = Tensor(np.arange(24.0).reshape(2, 3, 4))
    assert t.reshape(6, 4).shape == (6, 4)
    assert t.reshape((4, -1)).shape == (4, 6)
    assert t.transpose(2, 0, 1).shape == (4, 2, 3)
    assert t.permute((1, 0, 2)).shape == (3, 2, 4)
    assert t.T.shape == (4, 3, 2)
    np.testing.assert_array_equal(t[1, :, ::2].data, t.data[1, :, ::2])
    np.testing.assert_array_equal(t[..., [3, 0]].data, t.data[..., [3, 0]])


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("name", "expr"),
    [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
     ("div", lambda a, b: a / b), ("pow", lambda a, b: a**b)],
)
def test_shape_mismatch_names_op_and_both_shapes(name, expr):
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones((4,)))
    with pytest.raises(ValueError) as info:
        expr(a, b)
    message = str(info.value)
    assert name in message and "(2, 3)" in message and "(4,)" in message


def test_shape_mismatch_with_a_parameter_names_op_and_both_shapes():
    from tinygrad_edu.nn import Parameter

    weight, x = Parameter(np.ones((2, 3))), Tensor(np.ones((4,)))
    for expr in (lambda: weight + x, lambda: x * weight):
        with pytest.raises(ValueError, match=r"(add|mul): shapes .*cannot be broadcast"):
            expr()


def test_matmul_and_reshape_mismatch_name_op_and_shapes():
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\).*\(4, 2\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"matmul.*\(3,\).*\(2,\)"):
        Tensor(np.ones(3)) @ Tensor(np.ones(2))
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3\)"):
        Tensor(np.ones((2, 3))).reshape(4, 2)
    with pytest.raises(ValueError, match="mse_loss"):
        mse_loss(Tensor(np.ones(3)), np.ones(4))
    with pytest.raises(ValueError, match="cross_entropy"):
        cross_entropy(Tensor(np.ones((2, 3))), [0, 1, 2])
    with pytest.raises(ValueError, match="cross_entropy"):
        cross_entropy(Tensor(np.ones((2, 3))), [0, 3])
    with pytest.raises(TypeError, match="integers"):
        cross_entropy(Tensor(np.ones((2, 3))), [0.5, 1.0])


@pytest.mark.parametrize("bad", ["a", None, object(), [1, "x"], {"a": 1}])
def test_non_numeric_operands_are_a_type_error(bad):
    t = Tensor(np.ones(2))
    for expr in (lambda: t + bad, lambda: bad + t, lambda: t * bad, lambda: t - bad,
                 lambda: t / bad, lambda: t @ bad):
        with pytest.raises(TypeError):
            expr()


def test_value_mixed_with_tensor_is_a_type_error():
    t, v = Tensor(np.ones(2)), Value(1.0)
    for expr in (lambda: t + v, lambda: v + t, lambda: t @ v, lambda: t**v):
        with pytest.raises(TypeError):
            expr()


def test_backward_on_non_scalar_without_gradient_is_a_clear_error():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="gradient") as info:
        (x * 2).backward()
    assert "(2, 2)" in str(info.value)


def test_backward_on_one_element_tensor_needs_no_gradient():
    x = Tensor(np.array([[3.0]]), requires_grad=True)
    (x * x).backward()
    np.testing.assert_array_equal(x.grad, [[6.0]])


def test_gradient_of_wrong_shape_names_both_shapes():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError) as info:
        (x * 2).backward(np.ones((3, 2)))
    assert "(3, 2)" in str(info.value) and "(2, 3)" in str(info.value)


def test_backward_with_explicit_gradient():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x * x).backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, -6.0])
    x.zero_grad()
    (x * x).backward(Tensor([1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])


def test_backward_without_requires_grad_is_an_error():
    with pytest.raises(RuntimeError, match="requires"):
        (Tensor(np.ones(1)) * 2).backward()
    x = Tensor(np.ones(1), requires_grad=True)
    with no_grad():
        y = x * 2
    with pytest.raises(RuntimeError):
        y.backward()


def test_requires_grad_underscore_only_on_leaves():
    x = Tensor(np.ones(2)).requires_grad_()
    assert x.requires_grad
    with pytest.raises(RuntimeError):
        (x * 2).requires_grad_(False)


def test_constructors():
    assert Tensor.zeros(2, 3).shape == (2, 3) and Tensor.zeros(2, 3).dtype == np.float32
    assert Tensor.ones((2,), dtype=np.float64).dtype == np.float64
    r = Tensor.randn(3, 2, rng=np.random.default_rng(1), requires_grad=True)
    assert r.shape == (3, 2) and r.requires_grad and r.dtype == np.float32
