"""Gradient hooks on nodes and modules, retain_grad, and freeing intermediates' gradients."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_edu import Tensor, Value, nn
from tinygrad_edu.hooks import HookError, retain_intermediate_grads


def _numerical(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f at x (float64)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = old - eps
        down = f(x)
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def _tail(h: Tensor | np.ndarray) -> Tensor:
    """The part of the function after the hooked node: L = Σ exp(h)·h + (Σ h)²."""
    h = h if isinstance(h, Tensor) else Tensor(h)
    return (h.exp() * h).sum() + h.sum() * h.sum()


def test_tensor_hook_sees_the_gradient_of_an_intermediate_finite_differences() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 2)), requires_grad=True)
    h = (x @ w).tanh()
    seen = []
    h.register_hook(lambda g: seen.append(g.copy()))
    _tail(h).backward()
    assert len(seen) == 1
    expected = _numerical(lambda a: float(_tail(a).data), h.data.copy())
    np.testing.assert_allclose(seen[0], expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(seen[0], h.grad)


def test_value_hook_sees_the_gradient_finite_differences() -> None:
    a, b = Value(0.7), Value(-1.3)
    h = a * b + a.tanh()
    seen = []
    h.register_hook(seen.append)
    y = h.exp() * h + h  # h used three times: the hook sees the total
    y.backward()
    hv = h.data
    eps = 1e-6
    f = lambda v: np.exp(v) * v + v
    assert seen == [pytest.approx((f(hv + eps) - f(hv - eps)) / (2 * eps), rel=1e-6)]


def test_replacement_changes_leaf_gradients_by_the_chain_rule() -> None:
    rng = np.random.default_rng(1)
    xd, wd = rng.standard_normal(5), rng.standard_normal(5)
    x, w = Tensor(xd, requires_grad=True), Tensor(wd, requires_grad=True)
    h = x * w
    h.register_hook(lambda g: 3.0 * g)
    ((h * h).sum() + x.sum()).backward()
    # dL/dh = 2h, replaced by 6h; x gets 6h·w through h plus 1 from Σx directly.
    np.testing.assert_allclose(x.grad, 6 * xd * wd * wd + 1, rtol=1e-12)
    np.testing.assert_allclose(w.grad, 6 * xd * wd * xd, rtol=1e-12)
    np.testing.assert_allclose(h.grad, 6 * xd * wd, rtol=1e-12)  # .grad shows what flowed on


def test_hooks_chain_in_registration_order() -> None:
    x = Value(2.0)
    y = x * x
    y.register_hook(lambda g: g + 1.0)
    y.register_hook(lambda g: g * 10.0)
    y.backward()
    assert x.grad == pytest.approx((1.0 + 1.0) * 10.0 * 2 * 2.0)


def test_leaf_hook_sees_this_pass_gradient_and_leaves_accumulate() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.copy()))
    y = (x * x).sum()
    y.backward()
    y.backward()
    np.testing.assert_array_equal(seen[0], [2.0, 4.0])
    np.testing.assert_array_equal(seen[1], [2.0, 4.0])  # not the accumulated 4, 8
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])


def test_leaf_hook_replacement_is_what_accumulates() -> None:
    x = Value(3.0)
    x.register_hook(lambda g: 0.5 * g)
    (x * x).backward()
    assert x.grad == pytest.approx(3.0)


def test_removed_hooks_stay_silent() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    h = x * 2.0
    calls = []
    handle = h.register_hook(lambda g: calls.append(1) or g * 0)
    handle.remove()
    handle.remove()  # twice is fine
    h.sum().backward()
    assert calls == []
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])
    v = Value(1.0)
    with v.register_hook(lambda g: calls.append(1)):
        pass  # removed on exit
    (v * 2).backward()
    assert calls == []


def test_hooks_go_with_their_node() -> None:
    from tinygrad_edu import hooks

    before = len(hooks._HOOKS)
    x = Tensor(np.ones(2), requires_grad=True)
    h = x * 2.0
    h.register_hook(lambda g: None)
    assert h in hooks._HOOKS and len(hooks._HOOKS) == before + 1
    del h  # reference counting frees it: the hook record goes too
    assert len(hooks._HOOKS) == before
    # removing the last hook of a live node also forgets it: backward stops looking
    handle = x.register_hook(lambda g: None)
    assert len(hooks._HOOKS) == before + 1
    handle.remove()
    assert len(hooks._HOOKS) == before


def test_hook_that_raises_is_named() -> None:
    x = Tensor(np.ones(2), requires_grad=True)
    h = (x * 2.0).relu()
    h.label = "hidden"

    def broken(g):
        raise KeyError("oops")

    h.register_hook(broken)
    with pytest.raises(HookError, match=r"hook broken on the Tensor made by op 'relu' "
                                        r"\(shape \(2,\), label 'hidden'\) raised KeyError"):
        h.sum().backward()


@pytest.mark.parametrize("bad, what", [
    (lambda g: np.ones(3), r"shape \(3,\); the gradient has shape \(2,\)"),
    (lambda g: g.astype(np.float32), "dtype float32; the gradient has dtype float64"),
    (lambda g: [1.0, 2.0], "returned a list, not an array"),
])
def test_hook_returning_wrong_shape_or_dtype_is_named(bad, what) -> None:
    x = Tensor(np.ones(2), requires_grad=True)
    h = x * 3.0
    h.register_hook(bad)
    with pytest.raises(HookError, match=r"on the Tensor made by op 'mul' .*" + what):
        h.sum().backward()


def test_value_hook_returning_non_number_is_named() -> None:
    x = Value(1.0, label="x")
    x.register_hook(lambda g: "big")
    with pytest.raises(HookError, match=r"leaf Value \(data 1.0, label 'x'\) returned a str"):
        (x * 2).backward()


def test_register_hook_needs_requires_grad() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2)).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="expected a function"):
        Value(1.0).register_hook(3)


def _mlp_loss(x: Tensor, w1: Tensor, w2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    h = (x @ w1).tanh()
    out = h @ w2
    return (out * out).sum(), h, out


def test_retain_intermediate_grads_false_frees_all_but_leaves_and_retained() -> None:
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((3, 4)))
    w1 = Tensor(rng.standard_normal((4, 5)), requires_grad=True)
    w2 = Tensor(rng.standard_normal((5, 2)), requires_grad=True)
    loss, h, out = _mlp_loss(x, w1, w2)
    loss.backward()
    kept = (w1.grad.copy(), w2.grad.copy(), h.grad.copy())
    assert out.grad is not None  # today's default: every node keeps its .grad
    w1.grad = w2.grad = None
    loss, h, out = _mlp_loss(x, w1, w2)
    h.retain_grad()
    with retain_intermediate_grads(False):
        loss.backward()
    assert retain_intermediate_grads.enabled  # restored
    assert out.grad is None and loss.grad is None
    np.testing.assert_array_equal(h.grad, kept[2])
    np.testing.assert_array_equal(w1.grad, kept[0])
    np.testing.assert_array_equal(w2.grad, kept[1])


# ------------------------------------------------------------------ module hooks
def _net() -> nn.Sequential:
    rng = np.random.default_rng(3)
    return nn.Sequential(nn.Linear(4, 3, rng=rng), nn.Tanh(), nn.Linear(3, 2, rng=rng))


def test_module_forward_hooks_fire_once_per_call() -> None:
    net = _net()
    calls = []
    handles = [m.register_forward_hook(lambda mod, args, out: calls.append(type(mod).__name__))
               for m in [net, *net]]
    pre = net[0].register_forward_pre_hook(lambda mod, args: calls.append("pre"))
    net(Tensor(np.ones((2, 4))))
    assert calls == ["pre", "Linear", "Tanh", "Linear", "Sequential"]
    net(Tensor(np.ones((2, 4))))
    assert len(calls) == 10
    for h in [*handles, pre]:
        h.remove()
    net(Tensor(np.ones((2, 4))))
    assert len(calls) == 10


def test_forward_hooks_replace_args_and_output() -> None:
    net = _net()
    x = np.random.default_rng(4).standard_normal((2, 4))
    on_zeros = net(Tensor(np.zeros((2, 4)))).data
    net[0].register_forward_pre_hook(lambda mod, args: Tensor(args[0].data * 0))
    net[2].register_forward_hook(lambda mod, args, out: out * 2.0)
    np.testing.assert_allclose(net(Tensor(x)).data, 2 * on_zeros)


def test_full_backward_hook_sees_grad_output_and_grad_input() -> None:
    net = _net()
    lin = net[2]
    seen = []
    lin.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go)))
    x = Tensor(np.random.default_rng(5).standard_normal((2, 4)), requires_grad=True)
    out = net(x)
    (out * out).sum().backward()
    assert len(seen) == 1
    (grad_in,), (grad_out,) = seen[0]
    np.testing.assert_allclose(grad_out, 2 * out.data)
    np.testing.assert_allclose(grad_in, grad_out @ lin.weight.data)  # y = x Wᵀ + b
    hidden = net[1](net[0](Tensor(x.data))).data
    np.testing.assert_allclose(lin.weight.grad, grad_out.T @ hidden)  # unchanged by the hook


def test_full_backward_hook_on_first_layer_without_input_grad_and_replacement() -> None:
    net = _net()
    seen = []
    net[0].register_full_backward_hook(lambda m, gi, go: seen.append(gi))
    x = Tensor(np.ones((2, 4)))  # needs no gradient
    net(x).sum().backward()
    assert seen == [(None,)]
    # a replacement changes what the layers before receive: zero it at the Tanh
    net.zero_grad()
    net[1].register_full_backward_hook(lambda m, gi, go: (gi[0] * 0,))
    net(x).sum().backward()
    assert np.all(net[0].weight.grad == 0) and np.any(net[2].weight.grad != 0)


def test_full_backward_hook_fires_once_per_call_of_the_module() -> None:
    lin = nn.Linear(2, 2)
    calls = []
    lin.register_full_backward_hook(lambda m, gi, go: calls.append(1))
    x = Tensor(np.ones((1, 2)), requires_grad=True)
    (lin(x).sum() + lin(x).sum()).backward()  # two calls of the module
    assert len(calls) == 2


class _Product(nn.Module):
    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a * b


def test_module_backward_hook_errors_name_the_module() -> None:
    lin = nn.Linear(2, 2)

    def broken(m, gi, go):
        raise ValueError("nope")

    lin.register_full_backward_hook(broken)
    x = Tensor(np.ones((1, 2)), requires_grad=True)
    with pytest.raises(HookError, match=r"full backward hook 'broken' of Linear\(.*\) raised "
                                        r"ValueError: nope"):
        lin(x).sum().backward()
    two = _Product()
    seen = []
    two.register_full_backward_hook(lambda m, gi, go: seen.append(gi))
    a = Tensor(np.array([2.0]), requires_grad=True)
    b = Tensor(np.array([5.0]), requires_grad=True)
    two(a, b).sum().backward()
    assert len(seen) == 1 and seen[0][0].tolist() == [5.0] and seen[0][1].tolist() == [2.0]
    two.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[1]))
    with pytest.raises(HookError, match="for a module of one tensor input"):
        two(a, b).sum().backward()
