"""Every registry entry to second order against finite differences, in float64, with hypothesis.

``gradgradcheck`` differentiates each op once with ``create_graph=True`` (the backward pass
recorded as a graph) and compares the Jacobian of that first derivative -- with respect to
the inputs (the Hessian, or Hessian-vector products ∂/∂x ⟨v, J(x)·⟩ for tensor ops) and to
the upstream v -- with central differences of the analytic first derivative.  Unary and
binary entries are walked from :data:`REGISTRY` in both engines; every tensor op has a
drawn case below, and a test fails when an entry has no second-order support or no case.

Tolerances: eps = 1e-6, rtol = 1e-6, atol = 1e-7 (central differences of an analytic
first derivative err by O(eps²) + O(1e-16/eps) ≈ 1e-10 here), so a 1e-4 relative error in
a second derivative fails (``test_a_relative_error_of_1e_4_or_a_missing_dependence_fails``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from registry_cases import registry_cases

import tinygrad_edu.nn  # noqa: F401  (the nn layer ops are registry entries too)
from tinygrad_edu import REGISTRY, Tensor, Value, grad
from tinygrad_edu.losses import binary_cross_entropy_with_logits, cross_entropy
from tinygrad_edu.nn.activation import prelu
from tinygrad_edu.nn.conv import conv2d
from tinygrad_edu.nn.dropout import dropout
from tinygrad_edu.nn.linear import linear
from tinygrad_edu.nn.normalization import batch_norm
from tinygrad_edu.nn.pooling import avg_pool2d, max_pool2d
from tinygrad_edu.nn.shape import flatten, pad
from tinygrad_edu.registry import tensor_op
from tinygrad_edu.testing import GradcheckError, gradgradcheck
from tinygrad_edu.testing.strategies import (
    arrays,
    broadcastable_pairs,
    distinct_arrays,
    floats,
    op_inputs,
    shapes,
)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

TOL = {"eps": 1e-6, "rtol": 1e-6, "atol": 1e-7}
FEW = settings(max_examples=20)
SMALL = shapes(max_dims=2, max_side=3)

PARAM_VARIANTS: dict[str, list[dict]] = {
    "leaky_relu": [{"alpha": 0.2}],
    "elu": [{"alpha": 0.5}],
    "gelu": [{"approximate": "tanh"}],
    "clip": [{"lo": -0.5, "hi": 2.0}],
    "pow_const": [{"p": 3.0}, {"p": 0.5}, {"p": -1.5}],
}


UNARY = registry_cases("unary", PARAM_VARIANTS)
BINARY = registry_cases("binary", PARAM_VARIANTS)


def _call(op, params):
    return (lambda *xs: op(*xs, **params)) if params else op


def _t(a) -> Tensor:
    return Tensor(a, dtype=np.float64, requires_grad=True)


# ====================================================================== elementwise, both engines
@pytest.mark.parametrize(("op", "params"), UNARY)
@FEW
@given(data=st.data())
def test_unary_second_order_tensor(op, params, data):
    (a,) = data.draw(op_inputs(op, data.draw(SMALL, label="shape"), params=params), label="x")
    assert gradgradcheck(_call(op, params), [_t(a)], **TOL)


@pytest.mark.parametrize(("op", "params"), [c for c in UNARY if c.values[0].scalar])
@FEW
@given(data=st.data())
def test_unary_second_order_value(op, params, data):
    (a,) = data.draw(op_inputs(op, None, params=params), label="x")
    assert gradgradcheck(_call(op, params), [Value(a)], **TOL)


@pytest.mark.parametrize(("op", "params"), BINARY)
@FEW
@given(data=st.data())
def test_binary_second_order_tensor_with_broadcasting(op, params, data):
    sa, sb = data.draw(broadcastable_pairs(max_dims=2, max_side=3), label="shapes")
    a, b = data.draw(op_inputs(op, (sa, sb)), label="inputs")
    assert gradgradcheck(op, [_t(a), _t(b)], **TOL)


@pytest.mark.parametrize(("op", "params"), [c for c in BINARY if c.values[0].scalar])
@FEW
@given(data=st.data())
def test_binary_second_order_value(op, params, data):
    a, b = data.draw(op_inputs(op, None), label="inputs")
    assert gradgradcheck(op, [Value(a), Value(b)], **TOL)


def _hessian_value(op, params, xs: list[float]) -> np.ndarray:
    nodes = [Value(x) for x in xs]
    first = grad(_call(op, params)(*nodes), nodes, create_graph=True)
    return np.array([[0.0] * len(nodes) if g.is_leaf else  # a constant derivative
                     [0.0 if h is None else h.data for h in grad(g, nodes, allow_unused=True)]
                     for g in first])


def _hessian_tensor(op, params, xs: list[float]) -> np.ndarray:
    nodes = [_t(np.array(x)) for x in xs]
    first = grad(_call(op, params)(*nodes), nodes, create_graph=True)
    rows = []
    for g in first:
        if not g.requires_grad:  # a constant first derivative: its row is zero
            rows.append([0.0] * len(nodes))
            continue
        rows.append([0.0 if h is None else float(h.data)
                     for h in grad(g, nodes, allow_unused=True)])
    return np.array(rows)


@pytest.mark.parametrize(("op", "params"),
                         [c for c in UNARY + BINARY if c.values[0].scalar])
@FEW
@given(data=st.data())
def test_engines_agree_to_second_order(op, params, data):
    xs = [float(a) for a in data.draw(op_inputs(op, None, params=params or None), label="x")]
    np.testing.assert_allclose(_hessian_value(op, params, xs), _hessian_tensor(op, params, xs),
                               rtol=1e-12, atol=1e-12)


@given(x=floats(-2.5, 2.5))
def test_tanh_third_derivative_both_engines(x):
    t = math.tanh(x)
    expected = (6 * t * t - 2) * (1 - t * t)  # tanh‴ = (6 tanh² − 2)(1 − tanh²)
    for node in (Value(x), _t(np.array(x))):
        (d1,) = grad(node.tanh(), node, create_graph=True)
        (d2,) = grad(d1, node, create_graph=True)
        (d3,) = grad(d2, node)
        assert d3.is_leaf
        np.testing.assert_allclose(float(d3.data), expected, rtol=1e-12, atol=1e-14)


def test_log_softmax_of_values_and_of_a_tensor_have_the_same_hessian():
    xs, v = [0.3, -1.2, 2.0], np.array([0.7, -0.4, 1.1])
    vals = [Value(x) for x in xs]
    out = Value.log_softmax(vals)
    first = grad(out, vals, grad_outputs=list(v), create_graph=True)
    h_value = np.array([[h.data for h in grad(g, vals)] for g in first])
    t = _t(np.array(xs))
    (g,) = grad(t.log_softmax(axis=0), t, grad_outputs=v, create_graph=True)
    h_tensor = np.stack([grad(g, t, grad_outputs=np.eye(3)[i])[0].data for i in range(3)])
    np.testing.assert_allclose(h_value, h_tensor, rtol=1e-12, atol=1e-14)


# ====================================================================== tensor ops (HVPs)
@st.composite
def _images(draw, min_side=2, max_side=4):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h, w = draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side))
    return (n, c, h, w)


def _axis(draw, nd):
    return draw(st.none() | st.integers(-nd, nd - 1)) if nd else None


@st.composite
def tensor_cases(draw, name):
    """(fn, input arrays) for the tensor op ``name``: a linear op is followed by tanh, so
    its graph backward is differentiated with an upstream that depends on x."""
    if name in ("sum", "mean", "max"):
        shape = draw(shapes(min_dims=1, max_dims=2, max_side=3))
        axis, keep = _axis(draw, len(shape)), draw(st.booleans())
        a = draw(distinct_arrays(shape) if name == "max" else arrays(shape))
        return (lambda t: getattr(t, name)(axis=axis, keepdims=keep).tanh()), [a]
    if name == "reshape":
        a = draw(arrays((2, 3)))
        return (lambda t: t.reshape(3, 2).tanh()), [a]
    if name == "transpose":
        a = draw(arrays(draw(st.sampled_from([(2, 3), (2, 1, 3)]))))
        perm = tuple(draw(st.permutations(range(a.ndim))))
        return (lambda t: t.transpose(perm).tanh()), [a]
    if name == "getitem":
        a = draw(arrays((3, 2)))
        index = draw(st.sampled_from([(slice(None), 1), np.array([0, 2, 0]), (1, slice(0, 2))]))
        return (lambda t: t[index].tanh()), [a]
    if name == "matmul":
        ka, kb = draw(st.sampled_from([((2, 3), (3, 2)), ((3,), (2, 3, 2)), ((2, 2, 3), (3,))]))
        return (lambda p, q: p @ q), [draw(arrays(ka)), draw(arrays(kb))]
    if name in ("softmax", "log_softmax"):
        shape = draw(shapes(min_dims=1, max_dims=2, max_side=3))
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        return (lambda t: getattr(t, name)(axis=axis)), [draw(arrays(shape))]
    if name == "cross_entropy":
        n, c = draw(st.integers(1, 3)), draw(st.integers(2, 4))
        labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
        eps = draw(st.sampled_from([0.0, 0.2]))
        return (lambda t: cross_entropy(t, labels, label_smoothing=eps)), [draw(arrays((n, c)))]
    if name == "binary_cross_entropy_with_logits":
        shape = draw(shapes(min_dims=1, max_dims=2, max_side=3))
        return binary_cross_entropy_with_logits, [draw(arrays(shape)),
                                                  draw(arrays(shape, min_value=0.0,
                                                              max_value=1.0))]
    if name == "prelu":
        shape = (2, draw(st.integers(1, 3)), 2)
        a_shape = draw(st.sampled_from([(1,), (shape[1],)]))
        return (lambda x, a: prelu(x, a).tanh()), [
            draw(arrays(shape, avoid=(0.0,), margin=1e-3)), draw(arrays(a_shape))]
    if name == "conv2d":
        n, c, h, w = draw(_images(min_side=3))
        o, k = draw(st.integers(1, 2)), draw(st.integers(1, 3))
        stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
        arrs = [draw(arrays((n, c, h, w))), draw(arrays((o, c, k, k))), draw(arrays((o,)))]
        return (lambda x, wt, b: conv2d(x, wt, b, stride=stride, padding=padding).tanh()), arrs
    if name in ("max_pool2d", "avg_pool2d"):
        shape = draw(_images())
        k, s = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        op = max_pool2d if name == "max_pool2d" else avg_pool2d
        a = draw(distinct_arrays(shape))
        return (lambda t: op(t, kernel_size=k, stride=s).tanh()), [a]
    if name == "dropout":
        shape = draw(shapes(min_dims=1, max_dims=2, max_side=3))
        seed = draw(st.integers(0, 100))
        return (lambda t: dropout(t, p=0.5, rng=np.random.default_rng(seed)).tanh()), \
            [draw(arrays(shape))]
    if name == "linear":
        x_shape = draw(st.sampled_from([(2, 3), (3,), (2, 1, 3)]))
        arrs = [draw(arrays(x_shape)), draw(arrays((2, 3))), draw(arrays((2,)))]
        return (lambda x, w, b: linear(x, w, b).tanh()), arrs
    if name == "batch_norm":
        shape = draw(st.sampled_from([(3, 2), (2, 2, 2, 2)]))
        training = draw(st.booleans())
        rm, rv = np.array([0.1, -0.2]), np.array([0.8, 1.3])
        arrs = [draw(distinct_arrays(shape, min_gap=0.3)), draw(arrays((2,))),
                draw(arrays((2,)))]  # each channel's values apart: σ² well above 0
        return (lambda x, w, b: batch_norm(x, w, b, running_mean=None if training else rm,
                                           running_var=None if training else rv,
                                           training=training)), arrs
    if name == "flatten":
        return (lambda t: flatten(t, start_dim=1).tanh()), [draw(arrays((2, 2, 3)))]
    if name == "pad":
        p = draw(st.sampled_from([0, 1, (1, 2)]))
        return (lambda t: pad(t, padding=p).tanh()), [draw(arrays((1, 2, 2, 3)))]
    raise KeyError(name)  # pragma: no cover - a new op needs a case (see the test below)


TENSOR_OPS = ["sum", "mean", "max", "reshape", "transpose", "getitem", "matmul", "softmax",
              "log_softmax", "cross_entropy", "binary_cross_entropy_with_logits", "prelu",
              "conv2d", "max_pool2d", "avg_pool2d", "dropout", "linear", "batch_norm",
              "flatten", "pad"]


@pytest.mark.parametrize("name", TENSOR_OPS)
@FEW
@given(data=st.data())
def test_tensor_op_second_order(name, data):
    fn, arrs = data.draw(tensor_cases(name), label="case")
    assert gradgradcheck(fn, [_t(a) for a in arrs], **TOL)


def test_every_registry_entry_has_second_order_support_and_a_test():
    """Fails when an entry is added without a graph backward or without a case here."""
    for op in REGISTRY.values():
        if op.kind == "tensor":
            assert op.backward_graph is not None, f"{op.name}: no backward_graph"
            assert op.name in TENSOR_OPS, f"{op.name}: no second-order case in this file"
        else:
            assert op.kind in ("unary", "binary"), op  # walked by the tests above
    assert set(TENSOR_OPS) <= set(REGISTRY)


# ====================================================================== the check can fail
def _square_sum_op(scale: float, use_data: bool):
    """Σ x² with a correct first-order backward and a graph backward that is off by
    ``scale`` or treats x as a constant (reads its data)."""

    @tensor_op(f="Σ x²", grads=("2 x g",), category="reduce", register=False)
    class square_sum:
        def forward(x):
            return (x * x).sum(), None

        def backward(node, g):
            return (2.0 * node.parents[0].data * g,)

        def backward_graph(node, g):
            x = node.parents[0]
            return ((x.data if use_data else x) * (2.0 * scale) * g,)

    return square_sum


def test_the_correct_graph_backward_passes():
    x = _t(np.array([0.5, -1.25, 2.0]))
    assert gradgradcheck(_square_sum_op(1.0, False), [x], **TOL)


@pytest.mark.parametrize(("scale", "use_data"), [(1.0 + 1e-4, False), (1.0, True)],
                         ids=["1e-4 relative error", "x treated as a constant"])
def test_a_relative_error_of_1e_4_or_a_missing_dependence_fails(scale, use_data):
    x = _t(np.array([0.5, -1.25, 2.0]))
    with pytest.raises(GradcheckError, match=r"gradgradcheck .*input [01].*analytic .* vs "
                                             r"numerical"):
        gradgradcheck(_square_sum_op(scale, use_data), [x], **TOL)
