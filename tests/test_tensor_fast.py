"""The array engine's fast paths (the end of tensor.py, autograd's "Fast paths") do what
the plain paths do.

The fast backward of a Tensor (``autograd.fast_backward`` with tensor.py's ``_chain_rule``)
is checked against the plain one (``Node.run_backward``: the iterator DFS and
``op.backward``) on the same random graphs; ``results_first`` against the definition of a
topological order; the fast ``TensorOp`` call against the registry's; and what the fast pass
must hand to the plain one (hooks on the graph, anomaly mode, freeing, the explainer).
"""

from __future__ import annotations

import numpy as np
import pytest
from order_check import assert_results_first

from tinygrad_edu import Tensor, detect_anomaly, nn, no_grad, retain_intermediate_grads
from tinygrad_edu.anomaly import AnomalyError
from tinygrad_edu.autograd import Node, results_first
from tinygrad_edu.nn import functional as F
from tinygrad_edu.registry import REGISTRY, TensorOp
from tinygrad_edu.testing import gradcheck


def _random_graph(seed: int, n_ops: int = 40) -> tuple[list[Tensor], Tensor]:
    """Leaves (one without grad, one a row to broadcast) and a scalar of a random graph:
    shared nodes, numbers as operands, unary entries (relu, tanh, exp), broadcasting,
    matmul, reshape and sums."""
    rng = np.random.default_rng(seed)
    leaves = [Tensor(rng.uniform(-1, 1, (3, 4)), requires_grad=True, label=f"x{i}")
              for i in range(3)]
    leaves.append(Tensor(rng.uniform(-1, 1, (4,)), requires_grad=True, label="row"))
    leaves.append(Tensor(rng.uniform(-1, 1, (3, 4)), label="data"))  # no grad wanted
    w = Tensor(rng.uniform(-1, 1, (4, 4)), requires_grad=True, label="w")
    nodes: list[Tensor] = list(leaves)
    leaves.append(w)  # used by matmul only
    for _ in range(n_ops):
        a, b = nodes[rng.integers(len(nodes))], nodes[-1 - rng.integers(min(6, len(nodes)))]
        k = rng.integers(9)
        y = [a + b, a * b, (a - b).relu(), (a * 0.5).tanh() + 1.0, (a * 0.3).exp(), a @ w,
             (2.0 * a).relu() * b, a.reshape(4, -1).reshape(*a.shape) - b, a + a][k]
        if y.shape != (3, 4):  # the row alone, or a broadcast result: back to (3, 4)
            y = y + nodes[0]
        nodes.append(y)
    total = nodes[-1].sum()
    for t in nodes[-8:-1]:
        total = total + (t * t).sum() * 0.1
    return leaves, total


def _all_grads(out: Tensor) -> list:
    return [None if n.grad is None else n.grad.copy() for n in out.topological_order()]


@pytest.mark.parametrize("seed", range(6))
def test_fast_backward_gives_the_plain_backwards_gradients(seed: int) -> None:
    leaves_fast, out_fast = _random_graph(seed)
    leaves_plain, out_plain = _random_graph(seed)
    for _ in range(2):  # twice: leaves accumulate, intermediates start again
        out_fast.backward()
        Node.run_backward(out_plain)  # the plain pass: topological_order + _propagate
        for fast, plain in zip(_all_grads(out_fast), _all_grads(out_plain)):
            assert (fast is None) == (plain is None)
            if fast is not None:
                assert fast.dtype == plain.dtype
                np.testing.assert_allclose(fast, plain, rtol=1e-12, atol=1e-12)
    assert any(np.abs(x.grad).max() > 1e-3 for x in leaves_plain if x.grad is not None)
    assert leaves_fast[4].grad is None  # the leaf without requires_grad got nothing


def test_every_leaf_owns_its_gradient_array() -> None:
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()
    a.grad *= 5
    np.testing.assert_array_equal(b.grad, np.ones(3))
    c = Tensor(np.ones((2, 2)), requires_grad=True)
    y = c + c  # the same upstream twice into one leaf
    y.backward(np.ones((2, 2)))
    c.grad *= 10
    np.testing.assert_array_equal(y.grad, np.ones((2, 2)))
    x = Tensor(np.full(3, -1.0), requires_grad=True)
    g = np.ones(3)
    x.relu().backward(g)  # relu's local gradient (a new mask) takes the product
    np.testing.assert_array_equal(g, np.ones(3))  # the caller's gradient is untouched


@pytest.mark.parametrize("seed", range(4))
def test_results_first_puts_every_result_before_its_parents(seed: int) -> None:
    _, out = _random_graph(seed, n_ops=120)
    order = results_first(out)
    assert all(n.grad is None for n in order)  # the marks are cleared
    assert_results_first(order, out)


def test_a_deep_chain_and_a_ladder() -> None:
    x = Tensor(np.array([0.5]), requires_grad=True)
    y = x
    for _ in range(20000):  # deeper than Python's recursion limit
        y = y * 1.0
    y.sum().backward()
    assert x.grad.tolist() == [1.0]
    z = x
    for _ in range(30):  # 2**30 paths: each node must be visited once
        z = z + z
    z.sum().backward()
    assert x.grad.tolist() == [1.0 + 2.0**30]


def test_relu_gradient_is_exact_and_its_inputs_are_untouched() -> None:
    rng = np.random.default_rng(0)
    data = rng.uniform(0.1, 2.0, (5, 7)) * rng.choice([-1.0, 1.0], (5, 7))  # no kink
    x = Tensor(data.copy(), requires_grad=True)
    assert gradcheck(lambda t: (t.relu() * t).sum(), [x], eps=1e-6, atol=1e-8, rtol=1e-6)
    x.grad = None
    h = x * 1.0
    y = h.relu()
    g = rng.standard_normal((5, 7))
    y.backward(g)
    np.testing.assert_array_equal(x.grad, g * (data > 0))
    np.testing.assert_array_equal(y.grad, g)  # the upstream kept as relu's own .grad
    np.testing.assert_array_equal(h.data, data)
    np.testing.assert_array_equal(y.data, np.maximum(data, 0))
    e = x.exp()  # exp's local gradient is its own output: never written into
    e.backward(np.full((5, 7), 3.0))
    np.testing.assert_array_equal(e.data, np.exp(data))


def test_hooks_anomaly_freeing_and_the_explainer_take_the_plain_pass() -> None:
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    seen = []
    elsewhere = Tensor(np.ones(2), requires_grad=True)
    with elsewhere.register_hook(lambda g: seen.append("elsewhere")):
        h = x * 3.0
        with h.register_hook(lambda g: seen.append("h") or g * 10):
            h.relu().sum().backward()
    assert seen == ["h"] and x.grad.tolist() == [30.0, 0.0]
    x.grad = None
    h = x * 2.0
    with retain_intermediate_grads(False):
        (h * h).sum().backward()
    assert h.grad is None and x.grad.tolist() == [8.0, -16.0]  # d(2x)²/dx = 8x
    with detect_anomaly(), pytest.raises(AnomalyError), np.errstate(invalid="ignore"):
        (x.log() * 0.0).sum().backward()  # log of −2: nan in the forward
    from tinygrad_edu.viz import explain_backward
    x.grad = None
    text = str(explain_backward((x * x).sum()))
    assert "mul" in text and x.grad is not None


def test_backward_after_no_grad_and_of_a_non_scalar_is_refused() -> None:
    x = Tensor(np.ones(2), requires_grad=True)
    with no_grad():
        y = (x * 2.0).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    with pytest.raises(RuntimeError, match="explicit gradient"):
        (x * 2.0).backward()


def test_fast_tensor_op_call_matches_the_registry_call() -> None:
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
    linear = REGISTRY["linear"]
    fast = linear(Tensor(x), Tensor(w, requires_grad=True), Tensor(b))
    plain = TensorOp.__call__.__wrapped__(linear, Tensor(x), Tensor(w, requires_grad=True),
                                          Tensor(b))
    np.testing.assert_array_equal(fast.data, plain.data)
    assert fast.op is linear and fast.requires_grad and len(fast.parents) == 3
    mixed = linear(x, Tensor(w), b)  # arrays: the plain way converts them
    np.testing.assert_array_equal(mixed.data, plain.data)
    assert not mixed.requires_grad
    with pytest.raises(TypeError, match="unknown parameter"):
        REGISTRY["cross_entropy"](Tensor(np.zeros((2, 3))), lables=np.zeros(2, int))
    with no_grad():
        assert linear(Tensor(x), Tensor(w, requires_grad=True)).op is None


def test_cross_entropy_gradient_and_a_second_backward() -> None:
    rng = np.random.default_rng(2)
    logits = Tensor(rng.standard_normal((6, 4)), requires_grad=True)
    labels = np.array([0, 3, 1, 1, 2, 3], dtype=np.uint8)
    assert gradcheck(lambda t: F.cross_entropy(t, labels), [logits], eps=1e-6, atol=1e-9,
                     rtol=1e-6)
    logits.grad = None
    loss = F.cross_entropy(logits, labels.astype(np.int32))
    loss.backward()
    first = logits.grad.copy()
    loss.backward()  # the saved state is not consumed: the same gradient again
    np.testing.assert_allclose(logits.grad, 2 * first, rtol=0, atol=1e-15)
    p = np.exp(logits.data) / np.exp(logits.data).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(first, (p - np.eye(4)[labels]) / 6, atol=1e-15)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\].*min -1"):
        F.cross_entropy(logits, np.array([0, -1, 0, 0, 0, 0]))
    for dtype in (">i4", "<i8", ">u2", "i1"):  # the range check reads any byte order
        y = labels.astype(dtype)
        np.testing.assert_array_equal(F.cross_entropy(logits, y).data, loss.data)
        with pytest.raises(ValueError, match=r"got min 0, max 4"):
            F.cross_entropy(logits, np.where(y == 3, 4, y).astype(dtype))
        if dtype[-2] == "i":
            with pytest.raises(ValueError, match=r"got min -2, max 2"):
                F.cross_entropy(logits, np.where(y == 3, -2, y).astype(dtype))


def test_mlp_training_step_matches_the_plain_pass() -> None:
    """The README loop's step, fast and plain, from the same model: the same parameters."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((16, 20)).astype(np.float32), rng.integers(0, 5, 16)
    grads = []
    for backward in (Tensor.run_backward, Node.run_backward):
        model = nn.MLP([20, 16, 8, 5], rng=0)
        loss = F.cross_entropy(model(Tensor(x)), y)
        backward(loss)
        grads.append([p.grad for p in model.parameters()])
    for fast, plain in zip(*grads):
        assert fast.dtype == np.float32
        np.testing.assert_array_equal(fast, plain)
