"""The two engines check each other: random expressions over the registry's elementwise ops,
evaluated per element with Values and at once with a float64 Tensor, agree to 1e-12.

What this can and cannot catch: both engines run the *same* registry entry (its ``f`` and
``df``), so agreement proves the engines' plumbing -- graph building, the backward loop,
broadcasting, accumulation, dtype handling -- consistent, but a wrong formula is wrong in
both engines alike and passes here.  Correctness of every formula is the job of the
finite-difference checks (``tests/test_registry_gradients.py`` at the suite's float64
tolerances, ``tests/suite_tolerances.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygrad_edu import REGISTRY, Tensor, Value
from tinygrad_edu.testing.strategies import arrays

VARIANTS = {
    "leaky_relu": [{"alpha": 0.2}],
    "elu": [{"alpha": 0.5}],
    "gelu": [{"approximate": "tanh"}],
    "pow_const": [{"p": 3.0}, {"p": 0.5}, {"p": -1.5}],
}
UNARY = [(op, params) for op in REGISTRY.values() if op.kind == "unary" and op.scalar
         for params in [{}, *VARIANTS.get(op.name, [])]]
BINARY = [op for op in REGISTRY.values() if op.kind == "binary" and op.scalar]
RTOL = ATOL = 1e-12


def expressions(n_leaves: int) -> st.SearchStrategy:
    """Expression trees: ("leaf", i) | ("unary", (op, params), e) | ("binary", op, e1, e2)."""
    leaf = st.integers(0, n_leaves - 1).map(lambda i: ("leaf", i))

    def extend(children):
        return st.one_of(
            st.tuples(st.just("unary"), st.sampled_from(UNARY), children),
            st.tuples(st.just("binary"), st.sampled_from(BINARY), children, children),
        )

    return st.recursive(leaf, extend, max_leaves=6)


def _positive(node):
    """x² + ½: keeps an operand inside the domain of log, sqrt, x^p, a^b, 1/b."""
    return node * node + 0.5


def evaluate(expr, leaves):
    """Build the expression from ``leaves`` (Values or Tensors) with the registry ops."""
    kind = expr[0]
    if kind == "leaf":
        return leaves[expr[1]]
    if kind == "unary":
        (op, params), child = expr[1], evaluate(expr[2], leaves)
        if op.domain[0] >= 0:
            child = _positive(child)
        return op(child, **params)
    op, a, b = expr[1], evaluate(expr[2], leaves), evaluate(expr[3], leaves)
    if op.name == "pow":
        a, b = _positive(a), b.tanh()  # positive base, bounded exponent
    elif op.name == "div":
        b = _positive(b)
    return op(a, b)


def describe(expr) -> str:
    kind = expr[0]
    if kind == "leaf":
        return "abc"[expr[1]]
    if kind == "unary":
        (op, params), child = expr[1], expr[2]
        return f"{op.name}{params or ''}({describe(child)})"
    return f"{expr[1].name}({describe(expr[2])}, {describe(expr[3])})"


def _close(a, b) -> bool:
    return abs(a - b) <= ATOL + RTOL * max(abs(a), abs(b))


@given(data=st.data())
def test_random_expressions_agree_between_engines(data):
    n_leaves = data.draw(st.integers(2, 3), label="leaves")
    expr = data.draw(expressions(n_leaves), label="expression")
    k = data.draw(st.integers(1, 4), label="elements")
    inputs = [data.draw(arrays((k,)), label=f"leaf {i}") for i in range(n_leaves)]

    # scalar engine, one element at a time
    scalar_out, scalar_grads = [], [[0.0] * k for _ in range(n_leaves)]
    for j in range(k):
        leaves = [Value(float(a[j])) for a in inputs]
        try:
            out = evaluate(expr, leaves)
            out.backward()
        except (OverflowError, ZeroDivisionError):
            assume(False)
        scalar_out.append(out.data)
        for i, v in enumerate(leaves):
            scalar_grads[i][j] = v.grad
    values = scalar_out + [g for row in scalar_grads for g in row]
    assume(all(math.isfinite(v) and abs(v) < 1e100 for v in values))

    # tensor engine, all elements at once
    tensors = [Tensor(a, requires_grad=True) for a in inputs]
    with np.errstate(over="ignore"):  # intermediates may overflow where Values did too
        out = evaluate(expr, tensors)
        out.sum().backward()
    assert out.dtype == np.float64
    where = describe(expr)
    for j in range(k):
        assert _close(out.data[j], scalar_out[j]), (where, j, out.data[j], scalar_out[j])
        for i, t in enumerate(tensors):
            g = 0.0 if t.grad is None else t.grad[j]
            assert _close(g, scalar_grads[i][j]), (where, "grad", i, j, g, scalar_grads[i][j])


def test_expression_builder_uses_every_elementwise_op():
    assert {op.name for op, _ in UNARY} >= {"sigmoid", "tanh", "relu", "gelu", "exp", "log"}
    assert {op.name for op in BINARY} == {"add", "sub", "mul", "div", "pow"}
    a, b = Value(1.0), Value(2.0)
    expr = ("binary", REGISTRY["div"], ("leaf", 0), ("unary", (REGISTRY["log"], {}), ("leaf", 1)))
    denominator = math.log(2.0 * 2.0 + 0.5) ** 2 + 0.5  # log's and div's operands made positive
    assert evaluate(expr, [a, b]).data == pytest.approx(1.0 / denominator, rel=1e-15)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_value_and_tensor_softmax_family_agree(name, data):
    n = data.draw(st.integers(1, 6), label="n")
    xs = data.draw(arrays((n,), min_value=-20, max_value=20), label="x")
    weights = data.draw(arrays((n,)), label="weights")
    leaves = [Value(float(v)) for v in xs]
    outs = getattr(Value, name)(leaves)
    total = outs[0] * float(weights[0])
    for o, w in zip(outs[1:], weights[1:]):
        total = total + o * float(w)
    total.backward()
    t = Tensor(xs, requires_grad=True)
    y = getattr(t, name)()
    (y * Tensor(weights)).sum().backward()
    for j in range(n):
        assert _close(outs[j].data, y.data[j]), (j, outs[j].data, y.data[j])
        assert abs(leaves[j].grad - t.grad[j]) <= 1e-12 * (1 + np.abs(weights).sum()), j
