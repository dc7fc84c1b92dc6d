"""The scalar engine's fast paths (the end of value.py) do what the plain paths do.

The fast backward of a Value is checked against the plain one (``Node.run_backward``: the
iterator DFS and ``op.backward``) on the same graphs; its order against the definition of a
topological order; the storage of parents (two slots, numbers kept as numbers until
``parents`` is read) against what the plain engine showed; and the garbage collector's
process-wide state against what it was before.
"""

from __future__ import annotations

import gc
import math
import random

import pytest
from order_check import assert_results_first

from tinygrad_edu import Value, detect_anomaly, no_grad
from tinygrad_edu.anomaly import AnomalyError
from tinygrad_edu.autograd import CONSTANT, ConstantLabel, Node
from tinygrad_edu.registry import REGISTRY
from tinygrad_edu.value import _outputs_first


def _random_graph(seed: int, n_leaves: int = 6, n_ops: int = 60):
    """Leaves and a sum of nodes of a random graph: shared subgraphs (a node used by many
    later ones), number operands on either side, unary ops and both kinds of division."""
    rng = random.Random(seed)
    leaves = [Value(rng.uniform(0.5, 1.5), label=f"x{i}") for i in range(n_leaves)]
    nodes = list(leaves)
    for _ in range(n_ops):
        a, b = rng.choice(nodes), rng.choice(nodes[-8:])
        k = rng.randrange(9)
        c = rng.uniform(0.5, 2.0)
        y = [a + b, a - b, a * b, a / (b * b + 1.0), c - a, c / (a * a + 1.0), (a * c).tanh(),
             (a - b).relu() + b * 0.5, -(a * b).sigmoid() + 2 * b][k]
        nodes.append(y)
    total = nodes[-1]
    for v in nodes[-10:-1]:
        total = total + v
    return leaves, total


@pytest.mark.parametrize("seed", range(6))
def test_fast_backward_gives_the_plain_backwards_gradients(seed: int) -> None:
    leaves_fast, out_fast = _random_graph(seed)
    leaves_plain, out_plain = _random_graph(seed)
    out_fast.backward()
    Node.run_backward(out_plain)  # the plain pass: topological_order + _propagate
    assert any(abs(x.grad) > 1e-3 for x in leaves_plain)
    for fast, plain in zip(leaves_fast, leaves_plain):
        assert fast.grad == pytest.approx(plain.grad, rel=1e-12, abs=1e-12)
    # every intermediate too, the output's seed included; a number of the expression is
    # made a constant leaf only when read, after the fast pass, which sent it nothing
    for fast, plain in zip(out_fast.topological_order(), out_plain.topological_order()):
        assert fast.data == plain.data
        if isinstance(fast.label, ConstantLabel):
            assert fast.grad == 0.0
        else:
            assert fast.grad == pytest.approx(plain.grad, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_fast_order_puts_every_node_before_its_parents(seed: int) -> None:
    _, out = _random_graph(seed, n_ops=200)
    order = _outputs_first(out)
    assert all(n.grad == 0.0 for n in order)  # the marks are reset: intermediates start at 0
    assert_results_first(order, out)


def test_fast_backward_on_a_ladder_and_a_deep_chain() -> None:
    """Shared subgraphs with 2**n paths (each node reached twice) and a chain far deeper
    than Python's recursion limit: linear, no RecursionError, exact gradients."""
    x = Value(0.75)
    y = x
    for _ in range(3000):  # y used twice per rung
        y = y * 0.5 + y * 0.5
    y.backward()
    assert x.grad == 1.0
    x = Value(0.5)
    y = x
    n = 100_000
    for _ in range(n):
        y = y * 0.9999 + 1e-6
    y.backward()
    assert x.grad == pytest.approx(0.9999**n, rel=1e-9)


def test_backward_twice_accumulates_leaves_and_resets_intermediates() -> None:
    x = Value(3.0)
    h = x * x
    y = h * 2.0 + h
    y.backward()
    y.backward()
    assert x.grad == 2 * 18.0 and h.grad == 3.0 and y.grad == 1.0


def test_a_leaf_whose_grad_was_set_to_none_receives_its_gradient() -> None:
    x, w = Value(2.0), Value(-1.5)
    x.grad = w.grad = None
    (x * w + 1.0).backward()
    assert x.grad == -1.5 and w.grad == 2.0


def test_a_number_operand_is_one_constant_leaf_made_when_parents_is_read() -> None:
    x = Value(2.0)
    y = 3.0 - x  # reflected: the number is the first parent
    z = x / 4
    first = y.parents[0]
    assert isinstance(first.label, ConstantLabel) and first.label == CONSTANT
    assert first.data == 3.0 and first.is_leaf and y.parents[1] is x
    assert y.parents[0] is first  # the same leaf at every read
    assert z.parents[1].data == 4.0 and isinstance(z.parents[1].data, float)
    z.backward()
    assert x.grad == 0.25


def test_a_constant_read_before_backward_gets_its_gradient_as_in_the_plain_engine() -> None:
    x = Value(2.0)
    y = x * 5.0
    five = y.parents[1]
    y.backward()
    assert five.grad == 2.0 and x.grad == 5.0


def test_hooks_on_the_graph_are_called_and_a_hook_elsewhere_keeps_the_fast_pass() -> None:
    elsewhere = Value(1.0)
    seen = []
    with elsewhere.register_hook(lambda g: seen.append(("elsewhere", g))):
        x = Value(2.0)
        y = x * 3.0
        y.backward()  # the fast pass: the number 3 gets no gradient (read after: 0)
        assert x.grad == 3.0 and y.parents[1].grad == 0.0 and seen == []
        h = x * x
        with h.register_hook(lambda g: seen.append(("h", g)) or g * 10):
            (h + 1.0).backward()
        assert seen == [("h", 1.0)] and x.grad == 3.0 + 40.0


def test_one_tracked_object_per_op() -> None:
    """An op result is the only object Python's cyclic GC tracks (no parents tuple, no
    constant leaf for a number operand): what makes building a big graph cheap."""
    x = Value(0.5)
    was_enabled = gc.isenabled()
    gc.disable()  # no collection between the two counts
    try:
        before = len(gc.get_objects())
        y = x
        for _ in range(1000):
            y = (y * 0.999 + x).relu()
        after = len(gc.get_objects())
    finally:
        if was_enabled:
            gc.enable()
    assert after - before <= 3000 + 50, after - before  # 3 ops per step
    assert y.data > 0


@pytest.mark.parametrize("collector_on", [True, False])
def test_build_and_backward_leave_the_garbage_collector_as_they_found_it(
        collector_on: bool) -> None:
    def state():
        return gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()

    was_enabled = gc.isenabled()
    try:
        gc.enable() if collector_on else gc.disable()
        before = state()
        x = Value(0.3)
        y = x
        for _ in range(5000):
            y = (y * 1.0001 - 0.01).tanh() + x
        assert state() == before
        y.backward()
        assert state() == before
        with pytest.raises(ValueError):
            Value(-1.0).sqrt().backward()  # an error inside: the state is restored too
        assert state() == before
        assert x.grad != 0.0
    finally:
        gc.enable() if was_enabled else gc.disable()


def test_poles_in_forward_and_backward_give_ieee_results() -> None:
    with pytest.warns(RuntimeWarning):
        y = Value(1.0) / 0.0
    assert y.data == math.inf
    x = Value(0.0)
    with pytest.warns(RuntimeWarning):
        x.sqrt().backward()  # d√x/dx at 0: a pole of the local gradient
    assert x.grad == math.inf


def test_no_grad_and_anomaly_mode_take_the_plain_way() -> None:
    x = Value(2.0)
    with no_grad():
        y = x * 3.0 + 1.0
    assert y.is_leaf and y.data == 7.0
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()
    with detect_anomaly(), pytest.raises(AnomalyError, match="forward of op 'mul'"):
        Value(math.inf) * 0.0


def test_methods_still_name_their_registry_entry() -> None:
    """The fast methods keep what ``method_for`` gave (a redefined entry replaces them)."""
    for name in ("relu", "tanh", "exp", "leaky_relu"):
        method = getattr(Value, name)
        assert method._registry_op is REGISTRY[name] and method.__name__ == name
    assert Value(-2.0).leaky_relu(0.5).data == -1.0  # a parameter: the plain way
    assert Value(-2.0).leaky_relu().data == pytest.approx(-0.02)
