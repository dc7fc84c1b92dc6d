"""The graph core: accumulation, backward twice, zero_grad, no_grad, detach, deep graphs."""

from __future__ import annotations

import gc
import math
import time
import weakref

import numpy as np
import pytest

from tinygrad_edu import Tensor, Value, enable_grad, is_grad_enabled, no_grad


# ------------------------------------------------------------------ reused nodes
def test_a_plus_a_accumulates():
    a = Value(3.0)
    (a + a).backward()
    assert a.grad == 2.0


def test_x_times_x_accumulates():
    x = Value(3.0)
    (x * x).backward()
    assert x.grad == 6.0


def test_shared_subexpressions_get_exact_gradients():
    a, b, c = Value(2.0), Value(-3.0), Value(0.5)
    e = a * b  # used three times below
    f = e + e * c + e.tanh()
    f.backward()
    de = 1 + 0.5 + (1 - math.tanh(-6.0) ** 2)
    assert e.grad == pytest.approx(de, rel=1e-15)
    assert a.grad == pytest.approx(de * -3.0, rel=1e-15)
    assert b.grad == pytest.approx(de * 2.0, rel=1e-15)
    assert c.grad == -6.0


def test_tensor_reuse_accumulates():
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    y = x * x + x + x.exp() * x
    y.sum().backward()
    d = x.data
    np.testing.assert_allclose(x.grad, 2 * d + 1 + np.exp(d) * (1 + d), rtol=1e-15)


def test_same_leaf_as_both_inputs_of_every_binary_op():
    x = Value(1.5)
    (x - x).backward()
    assert x.grad == 0.0
    x.zero_grad()
    (x / x).backward()
    assert x.grad == pytest.approx(0.0, abs=1e-15)
    x.zero_grad()
    (x**x).backward()  # d x^x = x^x (ln x + 1)
    assert x.grad == pytest.approx(1.5**1.5 * (math.log(1.5) + 1), rel=1e-15)


# ------------------------------------------------------------------ backward twice
def test_backward_twice_doubles_leaves_not_intermediates():
    x, w = Value(2.0), Value(-1.0)
    h = x * w
    y = h.tanh() + h
    y.backward()
    first = (x.grad, w.grad, h.grad)
    y.backward()
    assert x.grad == 2 * first[0] and w.grad == 2 * first[1]
    assert h.grad == first[2]  # intermediates hold this pass's value only
    assert y.grad == 1.0


def test_backward_twice_tensor():
    x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    h = x * 3.0
    y = (h * h).sum()
    y.backward()
    g1, h1 = x.grad.copy(), h.grad.copy()
    y.backward()
    np.testing.assert_array_equal(x.grad, 2 * g1)
    np.testing.assert_array_equal(h.grad, h1)


def test_zero_grad_resets():
    x = Value(2.0)
    (x * x).backward()
    x.zero_grad()
    assert x.grad == 0.0
    (x * x).backward()
    assert x.grad == 4.0
    t = Tensor(np.ones(2), requires_grad=True)
    (t * t).sum().backward()
    t.zero_grad()
    assert t.grad is None
    (t * 3).sum().backward()
    np.testing.assert_array_equal(t.grad, [3.0, 3.0])


# ------------------------------------------------------------------ no_grad, enable_grad, detach
def test_no_grad_records_no_graph():
    x = Value(2.0)
    t = Tensor(np.ones(2), requires_grad=True)
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 3).tanh()
        z = (t * 3).relu().sum()
    assert is_grad_enabled()
    assert y.is_leaf and y.parents == () and y.op is None
    assert z.is_leaf and not z.requires_grad and z.parents == ()
    assert y.data == pytest.approx(math.tanh(6.0), rel=1e-15)


def test_no_grad_nested_and_restored_after_an_exception():
    with no_grad():
        with no_grad():
            assert not is_grad_enabled()
        assert not is_grad_enabled()
        with enable_grad():
            assert is_grad_enabled()
            x = Value(1.0)
            y = x * 2
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert y.op is not None
    y.backward()
    assert x.grad == 2.0
    with pytest.raises(ZeroDivisionError), no_grad():
        raise ZeroDivisionError("inside no_grad")
    assert is_grad_enabled()


def test_no_grad_as_decorator():
    @no_grad()
    def evaluate(t):
        """Evaluate without a graph."""
        assert not is_grad_enabled()
        return t * 2

    t = Tensor(np.ones(3), requires_grad=True)
    out = evaluate(t)
    assert not out.requires_grad and out.is_leaf
    assert evaluate.__name__ == "evaluate" and evaluate.__doc__ == "Evaluate without a graph."
    assert is_grad_enabled()


def test_detach_stops_the_gradient():
    x = Value(3.0)
    y = x.detach() * x
    y.backward()
    assert x.grad == 3.0  # only the non-detached path
    t = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    d = t.detach()
    assert not d.requires_grad and d.is_leaf and np.shares_memory(d.data, t.data)
    (d * t).sum().backward()
    np.testing.assert_array_equal(t.grad, [1.0, 2.0])
    assert d.grad is None


# ------------------------------------------------------------------ deep graphs
def test_million_op_value_chain_has_no_recursion_error():
    c, n_pairs = 1.000001, 500_000  # 1,000,000 ops: y = y * c, then y = y + 0.5
    x = Value(1.0)
    y = x
    start = time.perf_counter()
    for _ in range(n_pairs):
        y = y * c
        y = y + 0.5
    y.backward()
    elapsed = time.perf_counter() - start
    cn = c**n_pairs
    assert x.grad == pytest.approx(cn, rel=1e-9)
    assert y.data == pytest.approx(cn + 0.5 * c * (cn - 1) / (c - 1) / c, rel=1e-9)
    assert elapsed < 60  # a few seconds in practice
    del y
    gc.collect()


def test_hundred_thousand_deep_tensor_chain():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x
    for i in range(100_000):
        y = y * 1.0 if i % 2 else y + 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    np.testing.assert_array_equal(y.data, [50_001.0, 50_002.0])


# ------------------------------------------------------------------ topological order
def test_topological_order_puts_each_node_after_its_parents():
    a, b = Value(1.0), Value(2.0)
    c = a * b
    d = c + a
    e = d * c + b.exp()
    order = e.topological_order()
    position = {id(n): i for i, n in enumerate(order)}
    assert len(position) == len(order)  # no node twice
    assert order[-1] is e
    for node in order:
        for parent in node.parents:
            assert position[id(parent)] < position[id(node)]
    assert {id(n) for n in (a, b, c, d, e)} <= set(position)


def test_topological_order_is_linear_on_a_ladder_with_exponentially_many_paths():
    x = Value(0.75)
    y = x
    n = 20_000
    for _ in range(n):  # each rung uses y twice: 2**n paths from y back to x
        y = y * 0.5 + y * 0.5
    start = time.perf_counter()
    order = y.topological_order()
    assert time.perf_counter() - start < 5
    # x, then per rung: two constants 0.5, two products and one sum
    assert len(order) == 1 + 5 * n
    assert len({id(node) for node in order}) == len(order)
    y.backward()
    assert x.grad == 1.0 and y.data == 0.75  # exact in binary floating point


def test_ladder_gradient_matches_closed_form():
    x = Value(0.5)
    y = x
    for _ in range(50):
        y = y * 0.5 + y
    y.backward()
    assert x.grad == pytest.approx(1.5**50, rel=1e-13)


def test_on_edge_hook_sees_every_edge_once():
    a, b = Value(2.0), Value(3.0)
    y = (a * b) + a
    edges = []
    y.run_backward(on_edge=lambda node, i, up, g: edges.append((node.op.name, i, up, g)))
    assert sorted((name, i) for name, i, _, _ in edges) == [("add", 0), ("add", 1),
                                                           ("mul", 0), ("mul", 1)]
    assert ("mul", 0, 1.0, 3.0) in edges and ("mul", 1, 1.0, 2.0) in edges
    assert a.grad == 4.0


# ------------------------------------------------------------------ memory
def _live_values() -> int:
    return sum(1 for o in gc.get_objects() if type(o) is Value)


def test_value_graph_is_freed_by_reference_counting_alone():
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()  # anything left alive now would need the cycle collector
    try:
        before = _live_values()
        x = Value(1.5)
        y = ((x * 2).tanh() + x.exp()).relu()
        y.backward()
        assert _live_values() > before + 4
        del x, y
        assert _live_values() == before
    finally:
        if was_enabled:
            gc.enable()


def test_tensor_intermediate_dies_when_the_output_is_dropped():
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        x = Tensor(np.ones(4), requires_grad=True)
        hidden = (x * 2.0).tanh()
        probe = weakref.ref(hidden.data)  # the intermediate's own array
        y = (hidden * hidden).sum()
        y.backward()
        del hidden
        assert probe() is not None  # still held by the graph of y
        del y
        assert probe() is None  # freed at once: no reference cycle kept it
        assert x.grad is not None
    finally:
        if was_enabled:
            gc.enable()

