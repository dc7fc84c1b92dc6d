"""Bad inputs to the ops (issue 13, section 3): indexing with masks, float and numpy-integer
indices and axes; pow's errors, constant exponents and x ** 0; op parameters of the wrong
kind; reductions and the softmax family over empty inputs.  Each gets a named error or the
documented result."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu import REGISTRY, Tensor, Value, nn
from tinygrad_edu.testing import gradcheck


def _f64(data, grad: bool = True) -> Tensor:
    return Tensor(np.asarray(data, dtype=np.float64), requires_grad=grad)


# ------------------------------------------------------------------ indexing
def test_a_boolean_mask_inside_a_tensor_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="boolean data"):
        Tensor([20.0, 10.0, 30.0])[Tensor(np.array([True, False, True]))]


@settings(max_examples=20, deadline=None)
@given(mask=st.lists(st.booleans(), min_size=3, max_size=3))
def test_a_numpy_boolean_mask_gathers_the_right_elements(mask) -> None:
    x = _f64([20.0, 10.0, 30.0])
    m = np.array(mask)
    picked = x[m]
    np.testing.assert_array_equal(picked.data, x.data[m])
    picked.sum().backward()
    np.testing.assert_array_equal(x.grad, m.astype(float))


@pytest.mark.parametrize("index", [[1.7], [0.5, 1.0], [np.nan], [np.inf]])
def test_a_non_integer_index_tensor_is_an_error(index) -> None:
    with pytest.raises(IndexError, match="whole numbers"):
        Tensor([20.0, 10.0, 30.0])[Tensor(index)]


def test_whole_number_index_tensors_still_work() -> None:
    x = _f64([20.0, 10.0, 30.0])
    x[Tensor([2.0, 0.0, 2.0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 2.0])


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@pytest.mark.parametrize("axis", [np.int64(1), np.int32(-1), (np.int64(0), np.int64(1)),
                                  [np.int16(0)]])
def test_numpy_integer_axes_work_forward_and_backward(name, axis) -> None:
    data = np.arange(6.0).reshape(2, 3) ** 1.5  # distinct: no ties for max
    plain = tuple(int(a) for a in axis) if isinstance(axis, (tuple, list)) else int(axis)
    x, ref = _f64(data), _f64(data)
    getattr(x, name)(axis=axis).sum().backward()
    getattr(ref, name)(axis=plain).sum().backward()
    np.testing.assert_array_equal(x.grad, ref.grad)
    assert gradcheck(lambda t: getattr(t, name)(axis=axis), [_f64(data)], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("axis", [1.0, "0", True, (0, 1.5)])
def test_a_non_integer_axis_is_a_type_error(axis) -> None:
    for name in ("sum", "mean", "max"):
        with pytest.raises(TypeError, match="axis must be an int"):
            getattr(Tensor(np.ones((2, 3))), name)(axis=axis)


# ------------------------------------------------------------------ pow
def test_pow_errors_say_what_went_wrong() -> None:
    with pytest.raises(ValueError, match="base must be >= 0") as info:
        Tensor([-1.0]) ** Tensor([0.5], requires_grad=True)
    assert "broadcast" not in str(info.value)
    with pytest.raises(ValueError, match=r"pow: shapes \(2,\) and \(3,\) cannot be broadcast"):
        Tensor([1.0, 2.0]) ** Tensor([1.0, 2.0, 3.0])


@pytest.mark.parametrize("p", [np.array(2.0), np.array(3), np.float32(2.0), 2.0, 2])
def test_a_constant_exponent_takes_negative_bases(p) -> None:
    x = _f64([-2.0, 3.0])
    y = x ** p
    np.testing.assert_array_equal(y.data, np.array([-2.0, 3.0]) ** float(p))
    y.sum().backward()
    np.testing.assert_allclose(x.grad, float(p) * np.array([-2.0, 3.0]) ** (float(p) - 1))


def test_the_gradient_of_x_to_the_zero_is_zero_even_at_zero() -> None:
    x = _f64([0.0, 2.0, -1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (x ** 0).sum().backward()
        v = Value(0.0)
        (v ** 0).backward()
        a, b = _f64([0.0, 2.0]), _f64([0.0, 0.0])
        (a ** b).sum().backward()
    np.testing.assert_array_equal(x.grad, 0.0)
    assert v.grad == 0.0
    np.testing.assert_array_equal(a.grad, 0.0)
    np.testing.assert_array_equal(b.grad, [0.0, np.log(2.0)])


# ------------------------------------------------------------------ op parameters
FLOAT_PARAMS = [(op, key) for op in REGISTRY.values() if op.kind == "unary"
                for key, default in op.params.items() if isinstance(default, float)]
BAD_NUMBERS = [1j, "0.3", None, True, float("nan"), [0.3]]


def test_the_parameter_walk_found_the_float_parameters() -> None:
    found = {(op.name, key) for op, key in FLOAT_PARAMS}
    assert {("leaky_relu", "alpha"), ("elu", "alpha"), ("pow_const", "p"), ("clip", "lo"),
            ("clip", "hi")} <= found


@pytest.mark.parametrize("bad", BAD_NUMBERS + ["tensor"], ids=repr)
@pytest.mark.parametrize(("op", "key"), FLOAT_PARAMS, ids=lambda o: getattr(o, "name", o))
def test_every_float_parameter_refuses_non_numbers(op, key, bad) -> None:
    bad = Tensor(0.3) if bad == "tensor" else bad
    with pytest.raises(TypeError, match=f"{op.name}: parameter {key} must be a real number"):
        op(Tensor([-1.0, 2.0]), **{key: bad})
    if op.scalar:
        with pytest.raises(TypeError, match=f"{op.name}: parameter {key}"):
            op(Value(-1.0), **{key: bad})


def test_parameters_are_checked_in_methods_and_modules_too() -> None:
    with pytest.raises(TypeError, match="leaky_relu: parameter alpha"):
        Tensor([-1.0]).leaky_relu(1j)
    with pytest.raises(TypeError, match="elu: parameter alpha"):
        Value(-1.0).elu(alpha=1j)
    with pytest.raises(TypeError, match="leaky_relu: parameter alpha"):
        nn.LeakyReLU(alpha=Tensor(0.3))
    with pytest.raises(TypeError, match="gelu: parameter approximate must be a string"):
        Tensor([1.0]).gelu(approximate=1)
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        Tensor([1.0]).gelu(approximate="fast")
    y = Tensor([-1.0]).leaky_relu(np.float32(0.5))  # numpy numbers are real numbers
    assert y.dtype == np.float32 and y.data[0] == -0.5


# ------------------------------------------------------------------ empty inputs
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(2, 0), (0, 3), (0,)])
def test_softmax_family_of_an_empty_input_is_empty(name, shape) -> None:
    x = Tensor(np.zeros(shape), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = getattr(x, name)(axis=-1)
        y.backward(np.zeros(shape))
    assert y.shape == shape and x.grad.shape == shape


@pytest.mark.parametrize("name", ["mean", "max"])
@pytest.mark.parametrize(("shape", "axis"), [((0,), None), ((2, 0), 1), ((2, 0), None)])
def test_mean_and_max_over_nothing_raise(name, shape, axis) -> None:
    with pytest.raises(ValueError, match=f"{name}: cannot reduce over zero elements"):
        getattr(Tensor(np.zeros(shape)), name)(axis=axis)


def test_reductions_of_empty_inputs_along_a_nonempty_axis_are_empty() -> None:
    x = Tensor(np.zeros((0, 3)), requires_grad=True)
    for name in ("mean", "max", "sum"):
        assert getattr(x, name)(axis=1).shape == (0,)
    assert Tensor(np.zeros((2, 0))).sum().item() == 0.0  # the empty sum is 0
