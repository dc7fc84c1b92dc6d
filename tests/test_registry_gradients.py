"""Every registry entry against central differences, in float64, with hypothesis.

Unary and binary ops are walked generically from :data:`REGISTRY` (each parameter variant
of the activations too) in both engines; the tensor ops (reductions, shape ops, matmul,
softmax family, losses) have one hand-written property each.  Inputs come from
:mod:`tinygrad_edu.testing.strategies`, which keep away from kinks and poles, so every check
uses the suite's float64 tolerances (eps=1e-6, rtol=1e-6, atol=1e-8: see
``suite_tolerances.py``), tight enough that a formula off by 1e-5 relative fails.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from registry_cases import registry_cases
from suite_tolerances import gradcheck

import tinygrad_edu.nn  # noqa: F401  (the nn layer ops are registry entries too)
from tinygrad_edu import REGISTRY, Tensor, Value
from tinygrad_edu.losses import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    nll_loss,
)
from tinygrad_edu.testing.strategies import (
    POLE_MARGIN,
    POLES,
    arrays,
    broadcastable_pairs,
    distinct_arrays,
    kinks_of,
    op_inputs,
    shapes,
    tensors,
    values,
)

# numpy must stay silent on every drawn input (the strategies keep to the ops' domains)
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

#: Parameter variants checked besides the defaults.
PARAM_VARIANTS: dict[str, list[dict]] = {
    "leaky_relu": [{"alpha": 0.2}, {"alpha": 1.5}],
    "elu": [{"alpha": 0.5}, {"alpha": 2.0}],
    "gelu": [{"approximate": "tanh"}],
    "clip": [{"lo": -0.5, "hi": 2.0}, {"lo": 0.25, "hi": 0.75}],
    "pow_const": [{"p": 3.0}, {"p": 0.5}, {"p": -1.5}, {"p": 1.0}],
}




UNARY_CASES = registry_cases("unary", PARAM_VARIANTS)
BINARY_CASES = registry_cases("binary", PARAM_VARIANTS)
SCALAR_UNARY_CASES = [c for c in UNARY_CASES if c.values[0].scalar]
SCALAR_BINARY_CASES = [c for c in BINARY_CASES if c.values[0].scalar]

HAND_TESTED = {
    "sum", "mean", "max", "reshape", "transpose", "getitem", "matmul",
    "softmax", "log_softmax", "cross_entropy", "binary_cross_entropy_with_logits",
}
TESTED_OPS = {c.values[0].name for c in UNARY_CASES + BINARY_CASES} | HAND_TESTED


def test_walk_found_the_core_ops():
    names = {c.values[0].name for c in UNARY_CASES + BINARY_CASES}
    expected = {"identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu",
                "softplus", "silu", "exp", "log", "sqrt", "abs", "clip", "neg", "pow_const",
                "add", "sub", "mul", "div", "pow"}
    assert expected <= names
    assert HAND_TESTED <= set(REGISTRY)


def _call(op, params):
    return (lambda *xs: op(*xs, **params)) if params else op


# ====================================================================== unary, binary
@pytest.mark.parametrize(("op", "params"), UNARY_CASES)
@given(data=st.data())
def test_unary_tensor_gradient(op, params, data):
    shape = data.draw(shapes(), label="shape")
    (a,) = data.draw(op_inputs(op, shape, params=params), label="x")
    x = Tensor(a, dtype=np.float64, requires_grad=True)
    y = _call(op, params)(x)
    assert y.shape == a.shape and y.dtype == np.float64
    assert gradcheck(_call(op, params), [x])


@pytest.mark.parametrize(("op", "params"), SCALAR_UNARY_CASES)
@given(data=st.data())
def test_unary_value_gradient(op, params, data):
    (a,) = data.draw(op_inputs(op, None, params=params), label="x")
    x = Value(a)
    y = _call(op, params)(x)
    assert isinstance(y, Value) and isinstance(y.data, float)
    assert gradcheck(_call(op, params), [x])


@pytest.mark.parametrize(("op", "params"), BINARY_CASES)
@given(data=st.data())
def test_binary_tensor_gradient_with_broadcasting(op, params, data):
    shape_a, shape_b = data.draw(broadcastable_pairs(), label="shapes")
    a, b = data.draw(op_inputs(op, (shape_a, shape_b)), label="inputs")
    ta = Tensor(a, dtype=np.float64, requires_grad=True)
    tb = Tensor(b, dtype=np.float64, requires_grad=True)
    y = op(ta, tb)
    assert y.shape == np.broadcast_shapes(shape_a, shape_b)
    assert gradcheck(op, [ta, tb])
    # the gradients are summed back to each input's own shape
    y.backward(np.ones(y.shape))
    assert ta.grad.shape == shape_a and tb.grad.shape == shape_b


@pytest.mark.parametrize(("op", "params"), SCALAR_BINARY_CASES)
@given(data=st.data())
def test_binary_value_gradient(op, params, data):
    a, b = data.draw(op_inputs(op, None), label="inputs")
    assert gradcheck(op, [Value(a), Value(b)])


# ====================================================================== reductions
@st.composite
def shape_and_axis(draw, min_dims=0, max_dims=3):
    shape = draw(shapes(min_dims=min_dims, max_dims=max_dims))
    nd = len(shape)
    choices = [st.none()]
    if nd:
        single = st.integers(-nd, nd - 1)
        several = st.lists(st.integers(0, nd - 1), unique=True, max_size=nd).flatmap(
            lambda axes: st.tuples(*[st.sampled_from([a, a - nd]) for a in axes]))
        choices += [single, several]
    axis = draw(st.one_of(*choices))
    return shape, axis, draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean"])
@given(case=shape_and_axis(), data=st.data())
def test_sum_and_mean(name, case, data):
    shape, axis, keepdims = case
    a = data.draw(arrays(shape), label="x")
    x = Tensor(a, requires_grad=True)
    y = getattr(x, name)(axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(y.data, getattr(a, name)(axis=axis, keepdims=keepdims),
                               rtol=1e-13, atol=1e-14)
    assert gradcheck(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [x])


@given(case=shape_and_axis(), data=st.data())
def test_max_without_ties(case, data):
    shape, axis, keepdims = case
    a = data.draw(distinct_arrays(shape), label="x")
    x = Tensor(a, requires_grad=True)
    y = x.max(axis=axis, keepdims=keepdims)
    np.testing.assert_array_equal(y.data, a.max(axis=axis, keepdims=keepdims))
    assert gradcheck(lambda t: t.max(axis=axis, keepdims=keepdims), [x])
    # the whole upstream goes to the arg-max: each reduced slice has exactly one 1
    y.backward(np.ones(y.shape))
    assert set(np.unique(x.grad)) <= {0.0, 1.0}
    assert x.grad.sum() == y.data.size


def test_max_splits_gradient_between_ties():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])


# ====================================================================== shape ops
def _factorisations(n: int, max_dims: int = 3) -> list[tuple[int, ...]]:
    out = [()] if n == 1 else []
    for dims in range(1, max_dims + 1):
        for combo in itertools.product(range(1, n + 1), repeat=dims):
            if math.prod(combo) == n:
                out.append(combo)
    return out


@given(data=st.data())
def test_reshape(data):
    shape = data.draw(shapes(), label="shape")
    n = math.prod(shape)
    target = data.draw(st.sampled_from(_factorisations(n)), label="target")
    if target and data.draw(st.booleans(), label="use -1"):
        i = data.draw(st.integers(0, len(target) - 1))
        target = target[:i] + (-1,) + target[i + 1:]
    a = data.draw(arrays(shape), label="x")
    x = Tensor(a, requires_grad=True)
    y = x.reshape(target)
    np.testing.assert_array_equal(y.data, a.reshape(target))
    assert gradcheck(lambda t: t.reshape(target), [x])


@given(data=st.data())
def test_transpose_with_drawn_permutation(data):
    shape = data.draw(shapes(min_dims=1, max_dims=4, max_side=3), label="shape")
    perm = tuple(data.draw(st.permutations(range(len(shape))), label="perm"))
    a = data.draw(arrays(shape), label="x")
    x = Tensor(a, requires_grad=True)
    np.testing.assert_array_equal(x.transpose(perm).data, a.transpose(perm))
    np.testing.assert_array_equal(x.permute(*perm).data, a.transpose(perm))
    np.testing.assert_array_equal(x.T.data, a.T)
    assert gradcheck(lambda t: t.transpose(perm), [x])
    assert gradcheck(lambda t: t.T, [x])


@st.composite
def basic_index(draw, shape):
    parts = []
    for n in shape[: draw(st.integers(0, len(shape)))]:
        if draw(st.booleans()):
            parts.append(draw(st.integers(-n, n - 1)))
        else:
            start = draw(st.none() | st.integers(-n, n))
            stop = draw(st.none() | st.integers(-n, n))
            step = draw(st.sampled_from([None, 1, 2, -1, -2]))
            parts.append(slice(start, stop, step))
    if parts and draw(st.booleans()):
        return parts[0] if len(parts) == 1 else tuple(parts)
    return tuple(parts)


@given(data=st.data())
def test_getitem_basic_slices(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    index = data.draw(basic_index(shape), label="index")
    a = data.draw(arrays(shape), label="x")
    assume(a[index].size > 0)
    x = Tensor(a, requires_grad=True)
    np.testing.assert_array_equal(x[index].data, a[index])
    assert gradcheck(lambda t: t[index], [x])


@given(data=st.data())
def test_getitem_integer_arrays_with_repeats_accumulate(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3), label="shape")
    n0 = shape[0]
    rows = data.draw(st.lists(st.integers(-n0, n0 - 1), min_size=1, max_size=6), label="rows")
    rows = rows + [rows[0]]  # at least one repeat
    a = data.draw(arrays(shape), label="x")
    x = Tensor(a, requires_grad=True)
    np.testing.assert_array_equal(x[rows].data, a[rows])
    assert gradcheck(lambda t: t[rows], [x])
    # gradient scattered back and accumulated: row r receives one upstream per occurrence
    x[rows].sum().backward()
    counts = np.bincount(np.asarray(rows) % n0, minlength=n0).astype(np.float64)
    expected = np.broadcast_to(counts.reshape((n0,) + (1,) * (len(shape) - 1)), shape)
    np.testing.assert_array_equal(x.grad, expected)


@given(data=st.data())
def test_getitem_mixed_and_paired_integer_arrays(data):
    shape = data.draw(shapes(min_dims=2, max_dims=3), label="shape")
    n0, n1 = shape[0], shape[1]
    k = data.draw(st.integers(1, 5), label="k")
    i = data.draw(st.lists(st.integers(0, n0 - 1), min_size=k, max_size=k), label="i")
    j = data.draw(st.lists(st.integers(0, n1 - 1), min_size=k, max_size=k), label="j")
    a = data.draw(arrays(shape), label="x")
    x = Tensor(a, requires_grad=True)
    pairs = (np.array(i + i), np.array(j + j))  # every (i, j) pair repeated
    column_pick = (slice(None), np.array(j + j[:1]))
    for index in (pairs, column_pick):
        np.testing.assert_array_equal(x[index].data, a[index])
        assert gradcheck(lambda t, index=index: t[index], [x])
    x[pairs].sum().backward()
    expected = np.zeros(shape)
    np.add.at(expected, pairs, 1.0)
    np.testing.assert_array_equal(x.grad, expected)


def test_getitem_with_a_tensor_and_a_list_as_index():
    x = Tensor(np.arange(4.0), requires_grad=True)
    x[Tensor([1.0, 1.0, 3.0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 2.0, 0.0, 1.0])
    x.zero_grad()
    x[[0, 0, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 0.0, 0.0])


# ====================================================================== matmul
@st.composite
def matmul_shapes(draw):
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    batch_a, batch_b = draw(broadcastable_pairs(min_dims=0, max_dims=2, max_side=3))
    a_kind = draw(st.sampled_from(["1d", "2d", "batched"]))
    b_kind = draw(st.sampled_from(["1d", "2d", "batched"]))
    a_shape = {"1d": (k,), "2d": (n, k), "batched": batch_a + (n, k)}[a_kind]
    b_shape = {"1d": (k,), "2d": (k, m), "batched": batch_b + (k, m)}[b_kind]
    return a_shape, b_shape


@given(shapes_=matmul_shapes(), data=st.data())
def test_matmul_1d_2d_and_batched_with_broadcast_batch(shapes_, data):
    a_shape, b_shape = shapes_
    a = data.draw(arrays(a_shape), label="a")
    b = data.draw(arrays(b_shape), label="b")
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    y = ta @ tb
    np.testing.assert_allclose(y.data, a @ b, rtol=1e-13, atol=1e-13)
    assert gradcheck(lambda p, q: p @ q, [ta, tb])


def test_matmul_gradients_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    g = rng.standard_normal((3, 2))
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    (ta @ tb).backward(g)
    np.testing.assert_allclose(ta.grad, g @ b.T, rtol=1e-13)
    np.testing.assert_allclose(tb.grad, a.T @ g, rtol=1e-13)


def test_matmul_only_one_side_requires_grad():
    a = Tensor(np.ones((2, 2, 3)), requires_grad=True)
    w = Tensor(np.ones((3, 4)))
    (a @ w).sum().backward()
    assert w.grad is None
    np.testing.assert_array_equal(a.grad, np.full((2, 2, 3), 4.0))


# ====================================================================== softmax family
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_softmax_family_along_drawn_axis(name, data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    a = data.draw(arrays(shape), label="x")
    x = Tensor(a, requires_grad=True)
    y = getattr(x, name)(axis=axis)
    shifted = a - a.max(axis=axis, keepdims=True)
    log_ref = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    expected = log_ref if name == "log_softmax" else np.exp(log_ref)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-15)
    assert gradcheck(lambda t: getattr(t, name)(axis=axis), [x])


# ====================================================================== losses
@st.composite
def logits_and_labels(draw):
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    logits = draw(arrays((n, c)))
    labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    return logits, labels


@given(case=logits_and_labels())
def test_cross_entropy_gradient_and_composition(case):
    logits, labels = case
    x = Tensor(logits, requires_grad=True)
    assert gradcheck(lambda t: cross_entropy(t, labels), [x])
    # the fused op equals log_softmax followed by nll_loss, value and gradient, in float64
    fused = cross_entropy(x, labels)
    fused.backward()
    x2 = Tensor(logits.copy(), requires_grad=True)
    composed = nll_loss(x2.log_softmax(axis=-1), labels)
    composed.backward()
    assert fused.dtype == np.float64
    np.testing.assert_allclose(fused.data, composed.data, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(x.grad, x2.grad, rtol=1e-12, atol=1e-15)


@given(case=logits_and_labels(), eps=st.floats(0.01, 0.9))
def test_cross_entropy_with_label_smoothing(case, eps):
    logits, labels = case
    x = Tensor(logits, requires_grad=True)
    assert gradcheck(lambda t: cross_entropy(t, labels, label_smoothing=eps), [x])
    # the value is −mean Σ_c q_c log softmax_c with q = (1 − ε)·onehot + ε/C
    n, c = logits.shape
    q = np.full((n, c), eps / c)
    q[np.arange(n), labels] += 1 - eps
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    smoothed = cross_entropy(x, labels, label_smoothing=eps)
    np.testing.assert_allclose(smoothed.data, -(q * log_p).sum(axis=1).mean(), rtol=1e-12,
                               atol=1e-15)
    smoothed.backward()
    np.testing.assert_allclose(x.grad, (np.exp(log_p) - q) / n, rtol=1e-12, atol=1e-15)


@given(case=logits_and_labels())
def test_nll_loss_gradient(case):
    logits, labels = case
    x = Tensor(logits, requires_grad=True)
    assert gradcheck(lambda t: nll_loss(t, labels), [x])


@given(data=st.data())
def test_binary_cross_entropy_with_logits(data):
    shape = data.draw(shapes(min_dims=1), label="shape")
    x = Tensor(data.draw(arrays(shape), label="logits"), requires_grad=True)
    t = Tensor(data.draw(arrays(shape, min_value=0.0, max_value=1.0), label="targets"),
               requires_grad=True)
    assert gradcheck(binary_cross_entropy_with_logits, [x, t])
    xs, ts = x.data, t.data
    p = 1.0 / (1.0 + np.exp(-xs))
    reference = -(ts * np.log(p) + (1 - ts) * np.log1p(-p)).mean()
    np.testing.assert_allclose(binary_cross_entropy_with_logits(x, t).data, reference,
                               rtol=1e-9)


@given(data=st.data())
def test_mse_loss(data):
    shape = data.draw(shapes(), label="shape")
    p = Tensor(data.draw(arrays(shape), label="prediction"), requires_grad=True)
    t = Tensor(data.draw(arrays(shape), label="target"), requires_grad=True)
    assert gradcheck(mse_loss, [p, t])
    np.testing.assert_allclose(mse_loss(p, t).data, ((p.data - t.data) ** 2).mean(), rtol=1e-13)


# ====================================================================== the strategies themselves
@pytest.mark.parametrize(("op", "params"), UNARY_CASES + BINARY_CASES)
@given(data=st.data())
def test_op_inputs_stay_in_domain_and_away_from_kinks(op, params, data):
    inputs = data.draw(op_inputs(op, (3,), params=params if op.kind == "unary" else None))
    lo, hi = op.domain
    kinks = kinks_of(op, params)
    for i, a in enumerate(inputs):
        assert a.dtype == np.float64 and a.shape == (3,)
        assert np.all((a >= lo) & (a <= hi))
        for k in kinks:
            assert np.all(np.abs(a - k) >= 1e-3)
        for pole in POLES.get(op.name, {}).get(i, ()):
            assert np.all(np.abs(a - pole) >= POLE_MARGIN)


def test_kinks_move_with_parameters():
    clip = REGISTRY["clip"]
    assert kinks_of(clip) == (-1.0, 1.0)
    assert kinks_of(clip, {"lo": 0.25, "hi": 0.75}) == (0.25, 0.75)
    assert kinks_of(REGISTRY["relu"], {}) == (0.0,)


@given(pair=broadcastable_pairs(), data=st.data())
def test_broadcastable_pairs_broadcast(pair, data):
    a, b = pair
    assert isinstance(a, tuple) and isinstance(b, tuple)
    assert np.broadcast_shapes(a, b) == np.broadcast(np.empty(a), np.empty(b)).shape
    t = data.draw(tensors(a, min_value=-1, max_value=1, avoid=(0.0,), margin=0.1))
    assert t.requires_grad and t.dtype == np.float64 and t.shape == a
    assert np.all(np.abs(t.data) >= 0.1) and np.all(np.abs(t.data) <= 1)
    v = data.draw(values(0.5, 2.0))
    assert isinstance(v, Value) and 0.5 <= v.data <= 2.0


@given(arr=distinct_arrays(shapes(min_dims=1), min_gap=0.01))
def test_distinct_arrays_have_no_near_ties(arr):
    flat = np.sort(arr.ravel())
    assert np.all(np.diff(flat) >= 0.01 - 1e-12)
    assert np.all((arr >= -3) & (arr <= 3))


@given(a=arrays((2, 2), dtype=np.float32, avoid=(0.0,)))
def test_float32_arrays(a):
    assert a.dtype == np.float32 and np.all(np.abs(a) >= 1e-3)
