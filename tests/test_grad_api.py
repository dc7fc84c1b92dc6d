"""``tinygrad_edu.grad`` and ``backward(create_graph=True)``: PyTorch's semantics, the errors
for bad input, and the gradgradcheck fixture of the pytest plugin."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_edu import Tensor, Value, enable_grad, grad, no_grad
from tinygrad_edu.testing import gradgradcheck


def _t(a, label: str = "") -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=True, label=label)


# ====================================================================== results and .grad
def test_grad_returns_leaves_of_the_inputs_engine_and_leaves_grad_untouched():
    x, w = Value(1.5), Value(-2.0)
    x.grad = 7.0  # an earlier gradient: grad() neither reads nor changes it
    gx, gw = grad(x * w + x.tanh(), [x, w])
    assert isinstance(gx, Value) and gx.is_leaf and isinstance(gx.data, float)
    assert gx.data == pytest.approx(-2.0 + 1 - math.tanh(1.5) ** 2, rel=1e-15)
    assert gw.data == 1.5
    assert x.grad == 7.0 and w.grad == 0.0
    t = _t([0.5, -1.0])
    (gt,) = grad((t * t).sum(), t)
    assert isinstance(gt, Tensor) and gt.is_leaf and not gt.requires_grad
    np.testing.assert_array_equal(gt.data, [1.0, -2.0])
    assert t.grad is None


def test_create_graph_results_are_nodes_that_differentiate_again():
    x = Value(0.7)
    (d1,) = grad(x ** 3, x, create_graph=True)
    assert not d1.is_leaf and d1.data == pytest.approx(3 * 0.49, rel=1e-15)
    (d2,) = grad(d1, x, create_graph=True)
    (d3,) = grad(d2, x)
    assert d2.data == pytest.approx(6 * 0.7, rel=1e-15) and d3.data == pytest.approx(6.0)


def test_grad_outputs_weights_a_non_scalar_output_and_several_outputs_sum():
    x = _t([1.0, 2.0, 3.0])
    v = np.array([0.5, -1.0, 2.0])
    (g,) = grad(x * x, x, grad_outputs=v)
    np.testing.assert_allclose(g.data, 2 * x.data * v, rtol=1e-15)
    a = Value(2.0)
    (ga,) = grad([a * a, a * 3.0], a, grad_outputs=[1.0, 10.0])
    assert ga.data == 4.0 + 30.0


def test_gradient_of_an_intermediate_node():
    x = Value(0.3)
    h = x * 2.0
    y = h.tanh()
    (gh,) = grad(y, h)
    assert gh.data == pytest.approx(1 - math.tanh(0.6) ** 2, rel=1e-15)


def test_backward_create_graph_puts_nodes_in_grad_and_leaves_accumulate():
    x = Value(0.5, label="x")
    y = x.tanh() * x
    y.backward(create_graph=True)
    assert isinstance(x.grad, Value) and not x.grad.is_leaf
    t = math.tanh(0.5)
    assert x.grad.data == pytest.approx(t + 0.5 * (1 - t * t), rel=1e-15)
    assert "grad=" in repr(x)  # a Value gradient prints as its number
    (second,) = grad(x.grad, x)  # d/dx (tanh x + x·tanh' x) = 2 tanh' + x tanh''
    expected = 2 * (1 - t * t) + 0.5 * (-2 * t * (1 - t * t))
    assert second.data == pytest.approx(expected, rel=1e-14)
    first = x.grad.data
    (x * 3.0).backward(create_graph=True)  # leaves accumulate: the old node + the new one
    assert x.grad.data == pytest.approx(first + 3.0, rel=1e-15)


def test_backward_create_graph_on_tensors_accumulates_onto_an_array():
    w = _t([[1.0, -2.0]])
    w.grad = np.array([[10.0, 10.0]])
    loss = (w * w * w).sum()
    loss.backward(create_graph=True)
    assert isinstance(w.grad, Tensor) and w.grad.requires_grad
    np.testing.assert_allclose(w.grad.data, [[13.0, 22.0]], rtol=1e-15)
    (h,) = grad(w.grad.sum(), w)  # d/dw Σ 3w² = 6w
    np.testing.assert_allclose(h.data, [[6.0, -12.0]], rtol=1e-15)


def test_without_create_graph_backward_is_unchanged():
    x = _t([1.0, 2.0])
    (x * x).sum().backward()
    assert isinstance(x.grad, np.ndarray)
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_relu_kink_convention_first_and_second_order():
    x = _t([-1.0, 0.0, 2.0])
    (g,) = grad(x.relu().sum(), x, create_graph=True)
    np.testing.assert_array_equal(g.data, [0.0, 0.0, 1.0])  # 0 at the kink, as df states
    # ReLU'' = 0 (no Dirac delta): the local gradient is a constant 0/1 mask, so the first
    # derivative is a constant with no graph (as PyTorch's for a linear function)
    assert not g.requires_grad
    (h,) = grad((x.relu() * x).sum(), x, create_graph=True)  # 2x·[x > 0]: slope 2 or 0
    (h2,) = grad(h.sum(), x)
    np.testing.assert_array_equal(h2.data, [0.0, 0.0, 2.0])


# ====================================================================== bad input
def test_non_scalar_output_needs_grad_outputs():
    x = _t([1.0, 2.0], label="x")
    with pytest.raises(RuntimeError, match=r"grad: output 0 \(Tensor of shape \(2,\)\) is not "
                                           r"a scalar; pass grad_outputs"):
        grad(x * x, x)
    with pytest.raises(ValueError, match=r"grad_outputs 0 has shape \(3,\)"):
        grad(x * x, x, grad_outputs=np.ones(3))


def test_unused_input_is_named_unless_allowed():
    x, w = Value(1.0, label="x"), Value(2.0, label="w")
    with pytest.raises(RuntimeError, match=r"do not depend on input 1 'w' \(Value\); pass "
                                           r"allow_unused=True"):
        grad(x * x, [x, w])
    gx, gw = grad(x * x, [x, w], allow_unused=True)
    assert gx.data == 2.0 and gw is None


def test_input_that_does_not_require_grad():
    x = Tensor(np.ones(2), label="x")
    with pytest.raises(RuntimeError, match="input 0 'x' .* does not require grad"):
        grad((x * _t([1.0, 1.0])).sum(), x)


def test_create_graph_under_no_grad_is_refused():
    x = Value(1.0)
    y = x * x
    with no_grad():
        with pytest.raises(RuntimeError, match=r"create_graph=True under no_grad\(\)"):
            grad(y, x, create_graph=True)
        with pytest.raises(RuntimeError, match=r"backward\(create_graph=True\) under no_grad"):
            y.backward(create_graph=True)
        with enable_grad():
            (g,) = grad(y, x, create_graph=True)
    assert not g.is_leaf


def test_differentiating_a_gradient_made_without_create_graph_is_a_named_error():
    """This engine keeps graphs after backward; what has no graph to go back through is a
    gradient computed without create_graph (PyTorch's "freed graph" case)."""
    for x in (Value(0.5), _t([0.5])):
        (g,) = grad(x.tanh().sum() if isinstance(x, Tensor) else x.tanh(), x)
        with pytest.raises(RuntimeError, match="has no graph to differentiate.*without "
                                               "create_graph=True"):
            grad(g.sum() if isinstance(g, Tensor) else g, x)


def test_non_node_arguments():
    with pytest.raises(TypeError, match="grad: input 0 is a float"):
        grad(Value(1.0), [1.0])
    with pytest.raises(ValueError, match="no inputs"):
        grad(Value(1.0), [])


# ====================================================================== gradgradcheck + fixture
def test_gradgradcheck_on_a_function_of_two_tensors():
    a, b = _t([[0.5, -1.0]]), _t([[1.5], [0.25]])
    assert gradgradcheck(lambda p, q: (p @ q).tanh() * p.sum(), [a, b], rtol=1e-6, atol=1e-7)


USER_TEST = '''
import numpy as np
from tinygrad_edu import Tensor
from tinygrad_edu.registry import tensor_op


@tensor_op(f="Σ x³", grads=("3x² g",), category="reduce", register=False)
class cube_sum:
    def forward(x):
        return (x ** 3).sum(), None

    def backward(node, g):
        return (3 * node.parents[0].data ** 2 * g,)

    def backward_graph(node, g):
        x = node.parents[0]
        return (x * x * 3.0 * g,)


@tensor_op(f="Σ x³", grads=("3x² g",), category="reduce", register=False)
class bad_cube_sum:
    def forward(x):
        return (x ** 3).sum(), None

    def backward(node, g):
        return (3 * node.parents[0].data ** 2 * g,)

    def backward_graph(node, g):  # wrong: x² taken as a constant
        x = node.parents[0]
        return (3.0 * x.data ** 2 * g,)


def test_good(gradgradcheck):
    x = Tensor(np.array([0.5, -1.5]), dtype=np.float64, requires_grad=True)
    assert gradgradcheck(cube_sum, [x])


def test_bad(gradgradcheck):
    x = Tensor(np.array([0.5, -1.5]), dtype=np.float64, requires_grad=True)
    gradgradcheck(bad_cube_sum, [x])
'''


def test_plugin_gradgradcheck_fixture(pytester):
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([("*gradgradcheck (the gradient of the gradient): gradcheck "
                                 "failed for input 0*analytic 0 vs numerical -10.2*")])


def test_float32_stays_float32_through_a_second_order_pass():
    from tinygrad_edu import cross_entropy, nn

    model = nn.MLP([3, 4, 2], activation="gelu", rng=0)
    x = Tensor(np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]], dtype=np.float32))
    params = list(model.parameters())
    g = grad(cross_entropy(model(x), [0, 1]), params, create_graph=True)
    assert all(t.dtype == np.float32 and t.requires_grad for t in g)
    hv = grad(g, params, grad_outputs=[np.ones(p.shape, np.float32) for p in params])
    assert all(h.dtype == np.float32 and h.shape == p.shape for h, p in zip(hv, params))
