"""The checker itself: it passes correct gradients, catches wrong ones with a precise
message, refuses bad inputs; the custom-op recipe; the pytest plugin as a user sees it."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from tinygrad_edu import REGISTRY, Tensor, Value, no_grad, registry
from tinygrad_edu.registry import tensor_op, unary
from tinygrad_edu.testing import (
    GradcheckError,
    analytic_jacobian,
    gradcheck,
    numerical_grad,
    numerical_jacobian,
)
from tinygrad_edu.testing.plugin import gradients_match


def f64(*values) -> Tensor:
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True)


@pytest.fixture
def registry_sandbox():
    """Ops registered inside the test are removed afterwards (REGISTRY is global)."""
    saved = dict(REGISTRY)
    yield REGISTRY
    REGISTRY.clear()
    REGISTRY.update(saved)


# ------------------------------------------------------------------ deliberately wrong ops
@unary(f="sin x", df="2·cos x   (WRONG: off by a factor 2)", register=False)
class sin_wrong_factor:
    def f(m, x):
        return m.tanh(x) * 0 + _sin(m, x)

    def df(m, x, y):
        return 2.0 * _cos(m, x)


@unary(f="sin x", df="cos x", register=False)
class sin_right:
    def f(m, x):
        return _sin(m, x)

    def df(m, x, y):
        return _cos(m, x)


def _sin(m, x):
    return np.sin(x) if m.__name__ == "ArrayMath" else math.sin(x)


def _cos(m, x):
    return np.cos(x) if m.__name__ == "ArrayMath" else math.cos(x)


@tensor_op(f="cumulative sum", grads=("∂a = reversed cumsum of g (WRONG SIGN)",),
           category="math", register=False)
class cumsum_wrong_sign:
    def forward(a):
        return np.cumsum(a), None

    def backward(node, g):
        return (-np.cumsum(g[::-1])[::-1],)


@tensor_op(f="a · b (elementwise)", grads=("∂a = b", "∂b = a + 1 (WRONG)"), category="math",
           register=False)
class product_wrong_second:
    def forward(a, b):
        return a * b, None

    def backward(node, g):
        a, b = node.parents
        return g * b.data, g * (a.data + 1.0)


def _numbers(message: str) -> tuple[float, float]:
    match = re.search(r"analytic (\S+) vs numerical (\S+)", message)
    assert match, message
    return float(match.group(1)), float(match.group(2))


# ------------------------------------------------------------------ passes on correct functions
def test_passes_on_correct_value_functions():
    a, b = Value(0.7), Value(-1.3)
    assert gradcheck(lambda p, q: (p * q + p.exp()).tanh() / (q * q + 1), [a, b])
    assert gradcheck(lambda p: sin_right(p), [Value(2.0)])


def test_passes_on_correct_tensor_functions():
    x, w = f64(0.5, -1.0, 2.0), Tensor(np.linspace(-1, 1, 6).reshape(3, 2), requires_grad=True)
    assert gradcheck(lambda a, b: (a @ b).tanh().sum(), [x, w])
    assert gradcheck(sin_right, [x])


def test_passes_on_multi_output_tensors_and_lists_of_values():
    x = f64(0.3, -0.4, 1.1)
    assert gradcheck(lambda t: t.softmax(), [x])  # vector output: full Jacobian
    assert gradcheck(lambda t: [t * 2, t.sum().exp()], [x])  # several tensor outputs
    vs = [Value(0.1), Value(2.0), Value(-1.0)]
    assert gradcheck(lambda *v: Value.softmax(list(v)), vs)  # list of Value outputs
    assert gradcheck(lambda a, b, c: (a * b, b + c), vs[:1] + vs[1:])


def test_passes_when_an_output_ignores_an_input():
    x, y = f64(1.0, 2.0), f64(3.0)
    assert gradcheck(lambda a, b: a * 2, [x, y])
    jac = analytic_jacobian(lambda a, b: a * 2, [x, y])
    np.testing.assert_array_equal(jac[1], np.zeros((2, 1)))


# ------------------------------------------------------------------ fails on wrong gradients
def test_wrong_unary_factor_fails_naming_input_element_and_values():
    x = f64(1.5, 0.1, 1.2)  # the worst error is where |cos| is largest: element 1
    with pytest.raises(GradcheckError) as info:
        gradcheck(sin_wrong_factor, [x])
    message = str(info.value)
    assert "input 0" in message and "element (1,) (value 0.1)" in message
    # the registry entry whose local gradient is wrong, with its df formula
    assert "suspect: op 'sin_wrong_factor'" in message and "f'(x) = 2·cos x" in message
    analytic, numerical = _numbers(message)
    assert analytic == pytest.approx(2 * math.cos(0.1), rel=1e-9)
    assert numerical == pytest.approx(math.cos(0.1), rel=1e-8)


def test_wrong_unary_factor_fails_on_values_too():
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda v: sin_wrong_factor(v), [Value(0.5, label="angle")])
    message = str(info.value)
    assert "input 0" in message and "'angle'" in message and "element ()" in message
    analytic, numerical = _numbers(message)
    assert analytic == pytest.approx(2 * math.cos(0.5), rel=1e-9)
    assert numerical == pytest.approx(math.cos(0.5), rel=1e-8)


def test_wrong_sign_tensor_op_fails():
    x = Tensor(np.array([[0.5, 1.0], [2.0, -1.0]]).ravel(), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(cumsum_wrong_sign, [x])
    message = str(info.value)
    assert "input 0" in message and "element (" in message
    assert "suspect: op 'cumsum_wrong_sign'" in message and "WRONG SIGN" in message
    analytic, numerical = _numbers(message)
    assert analytic == -1.0 and numerical == pytest.approx(1.0, rel=1e-9)


def test_wrong_gradient_of_second_input_is_reported_as_input_1():
    a, b = f64(1.0, 2.0, 3.0), Tensor(np.array([4.0, -5.0, 6.0]), requires_grad=True,
                                      label="b")
    with pytest.raises(GradcheckError) as info:
        gradcheck(product_wrong_second, [a, b])
    message = str(info.value)
    assert "input 1 ('b')" in message and "element (0,) (value 4)" in message
    assert "3 of 9 Jacobian entries differ" in message  # the three diagonal entries
    assert "suspect: op 'product_wrong_second'" in message and "∂b = a + 1" in message
    analytic, numerical = _numbers(message)
    assert analytic - numerical == pytest.approx(1.0, rel=1e-8)


def test_tolerances_are_honoured():
    x = f64(0.3)

    @unary(f="x²", df="2x·(1 + 1e-4)", register=False)
    class slightly_off:
        def f(m, x):
            return x * x

        def df(m, x, y):
            return 2 * x * (1 + 1e-4)

    assert gradcheck(slightly_off, [x])  # relative error 1e-4 < rtol 1e-3
    with pytest.raises(GradcheckError):
        gradcheck(slightly_off, [x], atol=0.0, rtol=1e-6)


# ------------------------------------------------------------------ refuses bad inputs
def test_float32_input_is_a_type_error():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t.sum(), [Tensor(np.ones(2, dtype=np.float32), requires_grad=True)])


def test_non_leaf_input_is_a_value_error():
    x = f64(1.0)
    with pytest.raises(ValueError, match="leaf"):
        gradcheck(lambda t: t.sum(), [x * 2])
    with pytest.raises(ValueError, match="leaf"):
        gradcheck(lambda v: v, [Value(1.0) + 1])


def test_other_bad_inputs():
    with pytest.raises(TypeError):
        gradcheck(lambda t: t, [np.ones(2)])
    with pytest.raises(ValueError):
        gradcheck(lambda: Value(1.0), [])
    with pytest.raises(TypeError, match="must return"):
        gradcheck(lambda t: 3.0, [f64(1.0)])


def test_inputs_are_left_as_they_were():
    data = np.array([0.25, -1.5])
    x = Tensor(data.copy(), requires_grad=False)
    x.grad = np.array([7.0, 7.0])
    assert gradcheck(lambda t: (t * t).tanh(), [x])
    np.testing.assert_array_equal(x.data, data)  # bit for bit after all the shifting
    np.testing.assert_array_equal(x.grad, [7.0, 7.0])
    assert x.requires_grad is False


def test_non_contiguous_input_is_perturbed_in_place():
    x = Tensor(np.arange(6.0).reshape(2, 3).T / 4, requires_grad=True)  # a transposed view
    assert not x.data.flags.c_contiguous
    (g,) = numerical_grad(lambda t: (t * t).sum(), [x])
    np.testing.assert_allclose(g, 2 * x.data, rtol=1e-8, atol=1e-10)
    assert gradcheck(lambda t: (t * t).sum(), [x])


def test_gradcheck_works_inside_no_grad():
    with no_grad():
        assert gradcheck(lambda t: t.exp().sum(), [f64(0.5, 1.0)])
        assert gradcheck(lambda v: v.sigmoid(), [Value(0.5)])


# ------------------------------------------------------------------ numerical gradients
def test_numerical_grad_matches_closed_forms():
    x = f64(0.5, -1.0, 2.0)
    (g,) = numerical_grad(lambda t: (t * t * t).sum(), [x])
    np.testing.assert_allclose(g, 3 * x.data**2, rtol=1e-8)
    a, b = Value(1.5), Value(-2.0)
    ga, gb = numerical_grad(lambda p, q: p * q + p.exp(), [a, b])
    assert ga == pytest.approx(-2.0 + math.exp(1.5), rel=1e-8)
    assert gb == pytest.approx(1.5, rel=1e-8)
    (gs,) = numerical_grad(sin_right, [Value(1.0)])
    assert gs == pytest.approx(math.cos(1.0), rel=1e-8)
    with pytest.raises(ValueError, match="single number"):
        numerical_grad(lambda t: t * 2, [x])


def test_jacobians_have_output_by_input_shape():
    x = f64(0.1, 0.2, 0.3)
    W = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    num = numerical_jacobian(lambda w, v: w @ v, [W, x])
    ana = analytic_jacobian(lambda w, v: w @ v, [W, x])
    assert [j.shape for j in num] == [(2, 6), (2, 3)] == [j.shape for j in ana]
    np.testing.assert_allclose(ana[1], W.data, rtol=1e-15)
    np.testing.assert_allclose(num[1], W.data, rtol=1e-8, atol=1e-9)


def test_gradients_match_helper():
    x = f64(1.0, 2.0)
    gradients_match(lambda t: (t * t).sum(), [x], [np.array([2.0, 4.0])])
    with pytest.raises(AssertionError, match=r"input 0: gradient element \(1,\)"):
        gradients_match(lambda t: (t * t).sum(), [x], [np.array([2.0, 4.5])])
    gradients_match(lambda v: v * v, [Value(3.0)], [6.0])


# ------------------------------------------------------------------ the custom-op recipe
def test_custom_op_recipe_works_in_both_engines(registry_sandbox):
    REGISTRY.pop("cube", None)  # the README's name; removed again by the sandbox

    @unary(f="x³", df="3x²", domain=(-3.0, 3.0))
    class cube:
        """The cube function."""

        def f(m, x):
            return x * x * x

        def df(m, x, y):
            return 3 * x * x

    assert REGISTRY["cube"] is cube and cube.kind == "unary"
    assert "x³" in cube.__doc__ and "3x²" in cube.__doc__
    assert cube(Value(2.0)).data == 8.0
    assert gradcheck(cube, [Value(-1.3)])
    x = Tensor(np.array([[0.5, -2.0], [1.5, 3.0]]), requires_grad=True)
    assert gradcheck(cube, [x])
    assert gradcheck(lambda t: (cube(t) * t).sum(), [x])  # composes with built-in ops
    # exactly the README's lines: a float64 Tensor that does not even ask for gradients
    assert gradcheck(lambda t: cube(t).sum(), [Tensor(np.linspace(-2, 2, 5), dtype=np.float64)])
    y = cube(Tensor([1.0, 2.0]))
    assert y.dtype == np.float32


def test_registering_a_name_twice_replaces_it_and_register_false_opts_out(registry_sandbox):
    """A re-run notebook cell (or a second test file) defines the op again: the newest
    definition is what the registry, the engines' methods and the nn modules use; whoever
    holds the old op object keeps it."""
    from tinygrad_edu import nn

    @unary(f="2x", df="2", name="double_for_test", category="activation")
    class double:
        def f(m, x):
            return 2 * x

        def df(m, x, y):
            return 2.0

    Value.double_for_test = registry.method_for(double)  # as register_engine would attach it
    Tensor.double_for_test = registry.method_for(double)
    try:
        assert nn.DoubleForTest()(Tensor([1.0])).data[0] == 2.0

        @unary(f="3x", df="3", name="double_for_test", category="activation")
        class double_again:
            def f(m, x):
                return 3 * x

            def df(m, x, y):
                return 3.0

        assert REGISTRY["double_for_test"] is double_again
        assert Value(1.0).double_for_test().data == 3.0  # the method calls the newest
        assert Tensor([1.0]).double_for_test().data[0] == 3.0
        assert nn.DoubleForTest()(Tensor([1.0])).data[0] == 3.0  # and so does the module
        assert nn.module_for("double_for_test")(Tensor([1.0])).data[0] == 3.0
        assert double(Value(1.0)).data == 2.0  # the old object still is the old op
        assert [op.name for op in registry.entries()].count("double_for_test") == 1
    finally:
        del Value.double_for_test, Tensor.double_for_test
        nn.activation._GENERATED.pop("DoubleForTest", None)

    @unary(f="2x", df="2", name="double_for_test", register=False)
    class private_double:
        def f(m, x):
            return 2 * x

        def df(m, x, y):
            return 2.0

    assert REGISTRY["double_for_test"] is double_again and private_double is not double
    assert gradcheck(private_double, [Value(1.0)])


# ------------------------------------------------------------------ the pytest plugin
USER_TEST = '''
import numpy as np
from tinygrad_edu import Tensor, Value
from tinygrad_edu.registry import unary


@unary(f="x³", df="3x²", register=False)
class cube:
    def f(m, x):
        return x * x * x

    def df(m, x, y):
        return 3 * x * x


@unary(f="x³", df="x²  (wrong)", register=False)
class bad_cube:
    def f(m, x):
        return x * x * x

    def df(m, x, y):
        return x * x


def test_good(gradcheck, assert_gradients_match):
    x = Tensor(np.array([0.5, -1.5]), dtype=np.float64, requires_grad=True)
    assert gradcheck(cube, [x])
    assert gradcheck(cube, [Value(2.0)])
    assert_gradients_match(lambda t: cube(t).sum(), [x], [3 * x.data ** 2])


def test_bad(gradcheck):
    x = Tensor(np.array([0.5, -1.5]), dtype=np.float64, requires_grad=True)
    gradcheck(bad_cube, [x])
'''


def test_plugin_fixture_passes_good_and_fails_bad_op(pytester):
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*gradcheck failed for input 0*element (1,)*analytic*vs numerical*"])


GIVEN_TEST = '''
import numpy as np
from hypothesis import given, settings, strategies as st
from tinygrad_edu import Tensor
from tinygrad_edu.registry import unary


@unary(f="x³", df="x²   (wrong)", register=False)
class bad_cube:
    def f(m, x):
        return x * x * x

    def df(m, x, y):
        return x * x


@settings(max_examples=5, database=None)
@given(st.floats(0.5, 2.0))
def test_bad_under_given(gradcheck, v):
    x = Tensor(np.array([v]), dtype=np.float64)
    gradcheck(lambda t: bad_cube(t).sum(), [x])  # THE FAILING LINE
'''


def test_plugin_under_given_keeps_the_falsifying_example_and_the_failing_line(pytester):
    pytester.makepyfile(test_given=GIVEN_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    # hypothesis's report of the example (older versions: "Falsifying example")
    assert re.search(r"(Falsifying example|Failing test case): test_bad_under_given\(", out)
    assert "v=1.0" in out  # the shrunk example...
    assert "# THE FAILING LINE" in out  # ...and the test's own line, in the traceback
    assert "GradcheckError: gradcheck failed for input 0" in out and "(value 1)" in out
    assert "suspect: op 'bad_cube'" in out and "f'(x) = x²" in out


PROFILE_TEST = '''
from hypothesis import given, settings, strategies as st


def test_profile_is_active():
    assert settings.default.max_examples == 50
    assert settings.default.deadline is None


@given(st.floats(0, 1))
def test_runs(x):
    assert 0 <= x <= 1
'''


def test_plugin_hypothesis_profile_is_accepted(pytester):
    pytester.makepyfile(test_profile=PROFILE_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--hypothesis-profile=tinygrad-edu")
    result.assert_outcomes(passed=2)


def test_strategies_without_hypothesis_name_the_testing_extra():
    """A plain install lacks hypothesis: the import error says which extra brings it."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "try:\n    import tinygrad_edu.testing.strategies\n"
            "except ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "needs hypothesis" in out and "pip install 'tinygrad_edu[testing]'" in out
