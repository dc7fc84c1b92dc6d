"""Bad inputs and misuse of the two engines (issue 13, section 3): each case gets a named
error or the documented result, never a silent wrong one.

Classes: leaves own their gradient arrays; backward on a Value made under no_grad; the
``gradient`` argument; mutating ``.data`` (documented, tested); elementwise comparisons;
one policy at poles (x/0, √x at 0) for both engines.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu import Tensor, Value, no_grad


def _leaves(n: int = 2, shape: tuple = (3,)) -> list[Tensor]:
    rng = np.random.default_rng(n)
    return [Tensor(rng.standard_normal(shape), requires_grad=True) for _ in range(n)]


# ------------------------------------------------------------------ gradient ownership
GRAPHS = {
    "a + b": lambda a, b: (a + b).sum(),
    "a - b": lambda a, b: (a - b).sum(),
    "a + a + b": lambda a, b: (a + a + b).sum(),
    "identity": lambda a, b: (a.identity() + b).sum(),
    "reshape": lambda a, b: (a.reshape(1, 3) + b.reshape(3, 1)[0, 0]).sum(),
    "transpose": lambda a, b: (a.reshape(3, 1).T + b).sum(),
    "sum-mean": lambda a, b: a.sum() + b.mean() * 3,
}


@pytest.mark.parametrize("graph", list(GRAPHS))
def test_each_leaf_owns_its_grad_array(graph: str) -> None:
    a, b = _leaves()
    out = GRAPHS[graph](a, b)
    out.backward()
    assert a.grad is not b.grad
    assert not np.may_share_memory(a.grad, b.grad)
    assert not np.may_share_memory(a.grad, out.grad) and not np.may_share_memory(b.grad, out.grad)
    b_before, out_before = b.grad.copy(), np.array(out.grad, copy=True)
    a.grad *= 5  # in place, as a user or an optimizer might
    np.testing.assert_array_equal(b.grad, b_before)
    np.testing.assert_array_equal(out.grad, out_before)


def test_the_callers_gradient_argument_is_never_changed() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    g = np.full(3, 2.0)
    x.backward(g)  # a leaf as the output: its grad starts from the seed
    x.grad += 1
    np.testing.assert_array_equal(g, 2.0)
    y = Tensor(np.ones(3), requires_grad=True)
    (y + 0.0).backward(g)  # the seed passed through unchanged to a leaf
    y.grad *= 10
    np.testing.assert_array_equal(g, 2.0)
    t = Tensor(g)
    (Tensor(np.ones(3), requires_grad=True) * 1.0).backward(t)
    np.testing.assert_array_equal(t.data, 2.0)


def test_accumulated_grads_stay_separate_across_backward_calls() -> None:
    a, b = _leaves()
    (a + b).sum().backward()
    (a + b).sum().backward()
    a.grad += 100
    np.testing.assert_array_equal(b.grad, 2.0)


# ------------------------------------------------------------------ misuse
def test_value_backward_under_no_grad_raises_like_tensor() -> None:
    x = Value(2.0)
    with no_grad():
        y = x * x
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()
    assert x.grad == 0.0
    t = Tensor([2.0], requires_grad=True)
    with no_grad():
        u = (t * t).sum()
    with pytest.raises(RuntimeError, match="no_grad"):
        u.backward()


def test_a_value_leaf_made_under_no_grad_is_still_a_leaf() -> None:
    with no_grad():
        x = Value(3.0)
    x.backward()
    assert x.grad == 1.0
    with no_grad():
        c = Value(2.0) * 2  # a constant computed without a graph, used later in one
    y = Value(1.5)
    (y * c).backward()
    assert y.grad == 4.0


@pytest.mark.parametrize("gradient", [
    [None, None], np.array([1j, 1.0]), np.array([1, "a"], dtype=object), ["a", "b"],
    np.array([1.0, None], dtype=object),
])
def test_bad_gradient_argument_is_refused_by_name(gradient) -> None:
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match="gradient argument must hold real numbers"):
        (x * 2.0).backward(gradient)
    assert x.grad is None


@pytest.mark.parametrize("gradient", [1j, "1", [1.0], None])
def test_bad_value_gradient_argument(gradient) -> None:
    x = Value(2.0)
    y = x * 3
    if gradient is None:  # the documented default: d y / d y = 1
        y.backward(gradient)
        assert x.grad == 3.0
        return
    with pytest.raises(TypeError, match="backward gradient: expected a real number"):
        y.backward(gradient)


def test_gradient_argument_of_the_wrong_shape() -> None:
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"gradient of shape \(3,\) does not match"):
        (x * 2.0).backward(np.ones(3))


def test_mutating_data_between_forward_and_backward_is_the_documented_result() -> None:
    """Documented in autograd.py ("Changing .data"): not tracked; an op whose backward
    reads its inputs uses the values they hold when backward runs (PyTorch's ``.data``)."""
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    x.data[0] = 5.0  # after the graph was built
    y.backward()
    np.testing.assert_array_equal(x.grad, [10.0, 4.0])  # 2·x with the new x, as documented
    np.testing.assert_array_equal(y.data, 5.0)  # the forward value is not recomputed
    z = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = (z * 3.0).sum()  # a gradient that does not read z is unaffected
    z.data[:] = 7.0
    w.backward()
    np.testing.assert_array_equal(z.grad, [3.0, 3.0])


# ------------------------------------------------------------------ comparisons
OPS = ["__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"]
NUMPY = {"__eq__": np.equal, "__ne__": np.not_equal, "__lt__": np.less,
         "__le__": np.less_equal, "__gt__": np.greater, "__ge__": np.greater_equal}

small = st.lists(st.sampled_from([-1.0, 0.0, 0.5, 2.0]), min_size=1, max_size=4)


@settings(max_examples=25, deadline=None)
@given(a=small, b=small, op=st.sampled_from(OPS))
def test_tensor_comparisons_are_elementwise_without_gradient(a, b, op) -> None:
    n = min(len(a), len(b))
    x, y = Tensor(a[:n], requires_grad=True), Tensor(b[:n], requires_grad=True)
    got = getattr(x, op)(y)
    assert isinstance(got, np.ndarray) and got.dtype == bool
    np.testing.assert_array_equal(got, NUMPY[op](np.float32(a[:n]), np.float32(b[:n])))
    np.testing.assert_array_equal(getattr(x, op)(1.0), NUMPY[op](x.data, 1.0))  # with a number


@settings(max_examples=25, deadline=None)
@given(a=st.sampled_from([-1.0, 0.0, 2.0]), b=st.sampled_from([-1.0, 0.0, 2.0]),
       op=st.sampled_from(OPS))
def test_value_comparisons_return_bools(a, b, op) -> None:
    expected = getattr(a, op)(b)
    assert getattr(Value(a), op)(Value(b)) is expected
    assert getattr(Value(a), op)(b) is expected


def test_comparisons_keep_nodes_hashable_and_broadcast() -> None:
    a, b = Tensor([1.0, 2.0]), Tensor([1.0, 2.0])
    assert len({a, b}) == 2 and a in {a}
    v, w = Value(1.0), Value(1.0)
    assert v == w and len({v, w}) == 2
    np.testing.assert_array_equal(Tensor([[1.0], [3.0]]) > Tensor([2.0, 0.0]),
                                  [[False, True], [True, True]])
    with pytest.raises(ValueError, match=r"shapes \(2,\) and \(3,\) cannot be broadcast"):
        a == Tensor([1.0, 2.0, 3.0])  # noqa: B015
    assert (a == "text") is False  # not a number: identity, as any Python object
    with pytest.raises(TypeError):
        a < "text"  # noqa: B015


def test_a_comparison_mask_selects_and_backpropagates() -> None:
    x = Tensor(np.array([20.0, -10.0, 30.0]), requires_grad=True)
    picked = x[x > 0]
    np.testing.assert_array_equal(picked.data, [20.0, 30.0])
    picked.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 1.0])
    y = Tensor(np.array([2.0, -3.0], dtype=np.float32), requires_grad=True)
    masked = y * (y > 0)  # a mask as an operand counts as 0/1 of y's dtype
    assert masked.dtype == np.float32
    masked.sum().backward()
    np.testing.assert_array_equal(masked.data, [2.0, 0.0])
    np.testing.assert_array_equal(y.grad, [1.0, 0.0])


# ------------------------------------------------------------------ poles: one policy
def _value_at_pole(expr):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = expr()
    return out, [str(w.message) for w in caught]


@pytest.mark.parametrize(("a", "b", "expected"), [
    (1.0, 0.0, math.inf), (-2.0, 0.0, -math.inf), (0.0, 0.0, math.nan),
])
def test_division_by_zero_gives_the_ieee_result_in_both_engines(a, b, expected) -> None:
    v, messages = _value_at_pole(lambda: Value(a) / b)
    t, _ = _value_at_pole(lambda: (Tensor(np.array([a])) / b).data[0])
    for got in (v.data, float(t)):
        assert (math.isnan(got) and math.isnan(expected)) or got == expected
    assert any("divide" in m or "invalid" in m for m in messages)  # numpy's warning, as Tensor


def test_gradients_at_poles_agree_between_engines() -> None:
    x = Value(0.0)
    _value_at_pole(lambda: x.sqrt().backward())
    t = Tensor(np.array([0.0]), requires_grad=True)
    _value_at_pole(lambda: t.sqrt().sum().backward())
    assert x.grad == math.inf and t.grad[0] == math.inf
    a, b = Value(1.0), Value(0.0)
    _value_at_pole(lambda: (a / b).backward())
    ta = Tensor(np.array([1.0]), requires_grad=True)
    tb = Tensor(np.array([0.0]), requires_grad=True)
    _value_at_pole(lambda: (ta / tb).sum().backward())
    assert a.grad == ta.grad[0] == math.inf
    assert b.grad == tb.grad[0] == -math.inf  # −y/b = −inf/0 in both


def test_outside_the_real_domain_value_raises_tensor_gives_nan() -> None:
    """The documented difference (autograd.py, "Poles and domains")."""
    with pytest.raises(ValueError, match="sqrt: input must be >= 0"):
        Value(-1.0).sqrt()
    with np.errstate(invalid="ignore"):
        assert np.isnan(Tensor(np.array([-1.0])).sqrt().data[0])


@pytest.mark.parametrize("engine", ["value", "tensor"])
def test_finite_inputs_stay_silent(engine) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if engine == "value":
            y = Value(6.0) / Value(3.0)
            assert y.data == 2.0
        else:
            y = Tensor(np.array([6.0])) / 3.0
            assert y.data[0] == 2.0
