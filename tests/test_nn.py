"""Modules (parameters, names, state dicts, modes), initialisers, and the gradients of the
linear, dropout, batch-norm and PReLU registry ops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from suite_tolerances import gradcheck

import tinygrad_edu.nn.functional as F
from tinygrad_edu import Tensor, nn
from tinygrad_edu.registry import activation_ops

TESTED_OPS = {"linear", "dropout", "batch_norm", "prelu"}

FAST = settings(max_examples=20, deadline=None)


def t64(a, requires_grad: bool = True) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def weighted_sum(y: Tensor, seed: int = 0) -> Tensor:
    """Σ r ⊙ y with random weights r from a stream of their own: weights drawn from the
    inputs' own ``default_rng(seed)`` would make r affine in x, and batch-norm's ∂x (which
    projects out 1 and x̂) vanish, so the check could not see a wrong ∂x formula."""
    r = np.random.default_rng((seed, 0x5EED)).standard_normal(y.shape)
    return (y * Tensor(r)).sum()


# ------------------------------------------------------------------ op gradients


@FAST
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.booleans(),
       st.integers(0, 2**16))
def test_linear_gradients(n, d_in, d_out, bias, seed):
    rng = np.random.default_rng(seed)
    inputs = [t64(rng.standard_normal((n, d_in))), t64(rng.standard_normal((d_out, d_in)))]
    if bias:
        inputs.append(t64(rng.standard_normal(d_out)))
    assert gradcheck(lambda *a: weighted_sum(F.linear(*a)), inputs)


def test_linear_on_batched_3d_input():
    rng = np.random.default_rng(0)
    x, w, b = (t64(rng.standard_normal(s)) for s in [(2, 3, 4), (5, 4), (5,)])
    np.testing.assert_allclose(F.linear(x, w, b).data, x.data @ w.data.T + b.data)
    assert gradcheck(lambda *a: weighted_sum(F.linear(*a)), [x, w, b])


def test_dropout_eval_is_identity_with_identity_gradient():
    x = t64(np.random.default_rng(0).standard_normal((3, 4)))
    assert F.dropout(x, p=0.5, training=False) is x
    y = nn.dropout(x, p=0.5, training=False)
    np.testing.assert_array_equal(y.data, x.data)
    assert gradcheck(lambda a: weighted_sum(nn.dropout(a, p=0.5, training=False)), [x])


def test_dropout_train_gradient_is_the_scaled_mask():
    x = t64(np.random.default_rng(0).standard_normal((50, 40)))

    def fn(a):  # a fresh generator with the same seed: the same mask on every call
        return nn.dropout(a, p=0.3, training=True, rng=np.random.default_rng(7))

    y = fn(x)
    mask = y.data / x.data
    kept = mask != 0
    np.testing.assert_allclose(mask[kept], 1 / 0.7)
    assert 0.6 < kept.mean() < 0.8
    y.sum().backward()
    np.testing.assert_allclose(x.grad, mask)
    small = t64(x.data[:3, :4])
    assert gradcheck(lambda a: weighted_sum(fn(a)), [small])


@FAST
@given(st.sampled_from([(4, 3), (3, 2, 5), (2, 3, 2, 3)]), st.integers(0, 2**16))
def test_batch_norm_training_gradients(shape, seed):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = t64(rng.standard_normal(shape) * 2 + 1)
    w, b = t64(rng.uniform(0.5, 1.5, c)), t64(rng.standard_normal(c))

    def fn(a, gamma, beta):
        return weighted_sum(nn.batch_norm(a, gamma, beta, running_mean=None, running_var=None,
                                          training=True), seed)

    assert gradcheck(fn, [x, w, b])
    fn(x, w, b).backward()
    assert np.abs(x.grad).max() > 1e-3  # a gradient the check can see (not ≈ 0)


def test_batch_norm_training_normalises_and_updates_running_stats():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 3, 2, 2)) * np.array([1, 2, 3])[None, :, None, None] + 5
    rm, rv = np.zeros(3), np.ones(3)
    y = F.batch_norm(Tensor(x), rm, rv, training=True, momentum=0.1).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-4)
    m = x.shape[0] * 4
    np.testing.assert_allclose(rm, 0.1 * x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * m / (m - 1))


def test_batch_norm_eval_uses_running_stats_and_gradients():
    rng = np.random.default_rng(2)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    x, w, b = t64(rng.standard_normal((4, 3))), t64(rng.standard_normal(3)), t64(np.ones(3))
    y = nn.batch_norm(x, w, b, running_mean=rm, running_var=rv, training=False)
    np.testing.assert_allclose(y.data, (x.data - rm) / np.sqrt(rv + 1e-5) * w.data + 1)

    def fn(a, gamma, beta):
        return weighted_sum(nn.batch_norm(a, gamma, beta, running_mean=rm, running_var=rv,
                                          training=False))

    assert gradcheck(fn, [x, w, b])


@FAST
@given(st.sampled_from([(5,), (2, 3), (2, 3, 2, 2)]), st.integers(0, 2**16))
def test_prelu_gradients_wrt_input_and_slope(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x[np.abs(x) < 0.05] = 0.5  # keep away from the kink
    slope_shape = (shape[1],) if len(shape) > 1 else (1,)
    alpha = t64(rng.uniform(0.05, 0.5, slope_shape))
    assert gradcheck(lambda a, s: weighted_sum(nn.prelu(a, s)), [t64(x), alpha])


def test_prelu_module_slope_gradient_is_sum_of_negative_inputs():
    layer = nn.PReLU()
    x = Tensor(np.array([[-2.0, 3.0], [-1.0, -0.5]], dtype=np.float32))
    y = layer(x)
    np.testing.assert_allclose(y.data, [[-0.5, 3.0], [-0.25, -0.125]])
    y.sum().backward()
    np.testing.assert_allclose(layer.weight.grad, [-3.5])
    assert [n for n, _ in layer.named_parameters()] == ["weight"]


def test_rrelu_random_slopes_in_training_mean_slope_in_eval():
    layer = nn.RReLU(rng=0)
    x = Tensor(-np.ones((200, 10), dtype=np.float32))
    slopes = -layer(x).data
    assert slopes.min() >= 1 / 8 and slopes.max() <= 1 / 3 and slopes.std() > 0.03
    layer.eval()
    np.testing.assert_allclose(-layer(x).data, (1 / 8 + 1 / 3) / 2, rtol=1e-6)


# ------------------------------------------------------------------ modules


def test_mlp_parameter_count_and_names():
    model = nn.MLP([784, 256, 128, 64, 10])
    assert model.num_parameters() == 242762
    names = [name for name, _ in model.named_parameters()]
    assert names == [f"layers.{i}.{p}" for i in (0, 2, 4, 6) for p in ("weight", "bias")]
    assert model.layers[0].weight.shape == (256, 784)
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert [type(m).__name__ for m in model.children()] == ["Sequential"]
    assert len(list(model.modules())) == 9
    assert "Linear(784, 256)" in repr(model) and "ReLU()" in repr(model)


def test_every_registry_activation_has_a_module_and_a_function():
    x = Tensor(np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4))
    for op in activation_ops():
        module_cls = getattr(nn, nn.activation.module_name(op.name))
        np.testing.assert_allclose(module_cls()(x).data, op(x).data)
        assert getattr(F, op.name) is op
    assert nn.LeakyReLU(0.2).alpha == 0.2
    assert repr(nn.GELU(approximate="tanh")) == "GELU(approximate='tanh')"
    assert nn.Softmax(axis=0)(x).data.sum(axis=0) == pytest.approx(np.ones(4))
    for name in ("ReLU", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Identity", "Sigmoid",
                 "Tanh", "Softplus", "Softmax", "LogSoftmax"):
        assert issubclass(getattr(nn, name), nn.Module)


@pytest.mark.parametrize("activation", ["relu", "tanh", "leaky_relu", "selu", "prelu", "rrelu",
                                        "GELU"])
def test_mlp_activations_and_seeded_init(activation):
    a = nn.MLP([6, 5, 3], activation=activation, rng=3, bias_init=0.1)
    b = nn.MLP([6, 5, 3], activation=activation, rng=3, bias_init=0.1)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb
        np.testing.assert_array_equal(pa.data, pb.data)
    np.testing.assert_array_equal(a.layers[0].bias.data, np.float32(0.1))
    assert a(Tensor(np.ones((2, 6), dtype=np.float32))).shape == (2, 3)


def test_initialisers_have_the_published_variances():
    rng = np.random.default_rng(0)
    shape = (400, 300)
    assert nn.init.kaiming_normal(shape, rng).std() == pytest.approx(np.sqrt(2 / 300), rel=0.02)
    assert nn.init.xavier_uniform(shape, rng).std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)
    assert nn.init.lecun_normal(shape, rng).std() == pytest.approx(np.sqrt(1 / 300), rel=0.02)
    assert nn.init.fans((16, 3, 5, 5)) == (75, 400)
    assert nn.init.default_for("relu") == "kaiming"
    assert nn.init.default_for("tanh") == "xavier"
    assert nn.init.default_for("selu") == "lecun"
    tanh_net = nn.MLP([300, 400, 10], activation="tanh", rng=0)
    assert tanh_net.layers[0].weight.data.std() == pytest.approx(np.sqrt(2 / 700), rel=0.03)
    forced = nn.Linear(300, 400, init="lecun", rng=0)
    assert forced.weight.data.std() == pytest.approx(np.sqrt(1 / 300), rel=0.03)
    with pytest.raises(ValueError, match="unknown init"):
        nn.Linear(3, 4, init="bogus")


def test_linear_input_error_names_layer_and_shapes():
    with pytest.raises(ValueError) as err:
        nn.Linear(784, 256)(Tensor(np.zeros((128, 28, 28), dtype=np.float32)))
    assert str(err.value) == "Linear(784, 256): expected input (..., 784), got (128, 28, 28)"


def small_cnn(seed: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, rng=seed), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5, rng=seed),
                         nn.Linear(12, 4, rng=seed), nn.BatchNorm1d(4))


def test_state_dict_round_trip_includes_buffers():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((8, 1, 4, 4)).astype(np.float32))
    model = small_cnn(0)
    model(x)  # training step moves the running statistics
    state = model.state_dict()
    assert "1.running_mean" in state and "7.running_var" in state
    assert list(state)[:2] == ["0.weight", "0.bias"]
    assert not np.allclose(state["1.running_mean"], 0)
    fresh = small_cnn(1)
    fresh.load_state_dict(state)
    model.eval()
    fresh.eval()
    np.testing.assert_array_equal(model(x).data, fresh(x).data)
    state["0.weight"][...] = 0  # a copy, not the live array
    assert np.abs(model.state_dict()["0.weight"]).sum() > 0
    assert dict(model.named_buffers()).keys() == {"1.running_mean", "1.running_var",
                                                  "7.running_mean", "7.running_var"}


def test_load_state_dict_errors_name_parameter_and_shapes():
    model = nn.MLP([4, 3, 2])
    state = model.state_dict()
    state["layers.0.weight"] = np.zeros((5, 4), dtype=np.float32)
    before = model.layers[2].weight.data.copy()
    with pytest.raises(ValueError) as err:
        model.load_state_dict(state)
    message = str(err.value)
    assert "layers.0.weight" in message and "(5, 4)" in message and "(3, 4)" in message
    np.testing.assert_array_equal(model.layers[2].weight.data, before)  # nothing loaded
    state = model.state_dict()
    del state["layers.2.bias"]
    state["extra"] = np.zeros(1)
    with pytest.raises(KeyError) as err:
        model.load_state_dict(state)
    assert "layers.2.bias" in str(err.value) and "extra" in str(err.value)
    model.load_state_dict(state, strict=False)


def test_load_state_dict_keeps_parameter_objects():
    model = nn.MLP([4, 3, 2])
    params = model.parameters()
    model.load_state_dict(nn.MLP([4, 3, 2], rng=5).state_dict())
    assert all(p is q for p, q in zip(params, model.parameters()))


def test_train_eval_switches_dropout_and_batch_norm():
    model = small_cnn(0)
    assert all(m.training for m in model.modules())
    x = Tensor(np.random.default_rng(0).standard_normal((8, 1, 4, 4)).astype(np.float32))
    a, b = model(x).data, model(x).data
    assert not np.allclose(a, b)  # dropout masks differ (and running stats move)
    running = model[1].running_mean.copy()
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    c, d = model(x).data, model(x).data
    np.testing.assert_array_equal(c, d)
    np.testing.assert_array_equal(model[1].running_mean, running)
    model.train()
    assert model[5].training


def test_zero_grad_sets_grads_to_none():
    model = nn.MLP([3, 4, 2])
    F.cross_entropy(model(Tensor(np.ones((2, 3), dtype=np.float32))), [0, 1]).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_parameter_is_a_tensor_and_modules_register_in_order():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(np.zeros(2))
            self.fc = nn.Linear(2, 2, bias=False)
            self.a = nn.Parameter(np.ones(3))
            self.register_buffer("count", np.zeros(1))

        def forward(self, x):
            return self.fc(x * self.b)

    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["b", "a", "fc.weight"]
    assert isinstance(net.a, Tensor) and net.a.requires_grad
    assert net.a.__slots__ == ()
    assert net.num_parameters() == 2 + 3 + 4
    assert list(net.state_dict()) == ["b", "a", "fc.weight", "count"]
    assert (net.a * 2).data.tolist() == [2.0, 2.0, 2.0]
    assert repr(net).startswith("Net(\n  (fc): Linear(2, 2, bias=False)")


def test_batch_norm_and_pool_layer_shape_errors():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3.*expected input \(N, 3, H, W\)"):
        nn.BatchNorm2d(3)(Tensor(np.zeros((2, 4, 3, 3))))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(5"):
        nn.BatchNorm1d(5)(Tensor(np.zeros((2, 4))))
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=2"):
        nn.MaxPool2d(2)(Tensor(np.zeros((2, 3))))


def test_batch_norm_without_affine_has_no_parameters():
    layer = nn.BatchNorm1d(3, affine=False)
    assert layer.parameters() == []
    assert list(layer.state_dict()) == ["running_mean", "running_var"]
    y = layer(Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)))
    np.testing.assert_allclose(y.data.mean(axis=0), 0, atol=1e-6)


def test_sequential_indexing_and_slicing():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(model) == 3 and isinstance(model[1], nn.ReLU)
    head = model[:2]
    assert isinstance(head, nn.Sequential) and head(Tensor(np.ones((1, 2)))).shape == (1, 3)
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), "relu")


def test_a_float64_batch_into_a_float32_model_is_cast_to_the_layers_dtype() -> None:
    """Documented choice (PyTorch raises): the input is cast to the layer's dtype, so the
    whole forward pass stays float32; the input's gradient keeps the input's dtype."""
    rng = np.random.default_rng(0)
    mlp = nn.MLP([6, 5, 3], rng=0)
    x64 = rng.standard_normal((4, 6))
    out = mlp(Tensor(x64))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, mlp(Tensor(x64.astype(np.float32))).data, rtol=1e-6)
    xt = Tensor(x64, requires_grad=True)
    mlp(xt).sum().backward()
    assert xt.grad.dtype == np.float64 and xt.grad.shape == (4, 6)
    assert mlp.layers[0].weight.grad.dtype == np.float32
    conv = nn.Conv2d(2, 3, 3, rng=0)
    img = Tensor(rng.standard_normal((2, 2, 5, 5)), requires_grad=True)
    y = conv(img)
    assert y.dtype == np.float32
    y.sum().backward()
    assert img.grad.dtype == np.float64 and conv.weight.grad.dtype == np.float32


@pytest.mark.parametrize("shape", [(4, 3, 5, 2), (6, 3), (8, 3, 16, 8)])  # tiled 8, 2, 1024x
def test_batch_norm_channels_last_fast_path_is_the_same_op(shape):
    """x with its channels last in memory (as convolution outputs are) takes the fast path
    of nn/normalization.py: the same outputs, running statistics and gradients as the
    general path (also with rows tiled 1024 times), and central differences agree
    (float64)."""
    from tinygrad_edu.nn import normalization

    rng = np.random.default_rng(7)
    last = (shape[0],) + shape[2:] + (shape[1],)
    x_last = np.moveaxis(rng.standard_normal(last), -1, 1)  # channels last in memory
    g_last = np.moveaxis(rng.standard_normal(last), -1, 1)
    general = np.ascontiguousarray if len(shape) == 4 else np.asfortranarray
    results = []
    for x, g in ((x_last, g_last), (general(x_last), general(g_last))):
        assert (normalization._rows(x) is not None) == (x is x_last)
        bn = nn.BatchNorm2d(3) if len(shape) == 4 else nn.BatchNorm1d(3)
        bn.weight.data = np.array([0.5, -1.5, 2.0])
        bn.bias.data = np.array([0.1, 0.2, -0.3])
        xt = Tensor(x, dtype=np.float64, requires_grad=True)
        y = bn(xt)
        y.backward(g)
        results.append((y.data, xt.grad, bn.weight.grad, bn.bias.grad, bn.running_mean.copy(),
                        bn.running_var.copy()))
    for fast, slow in zip(*results):
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
    if x_last.size > 100:  # the agreement above is the check; differences of a sum of
        return  # thousands of terms are too coarse for gradcheck's tolerances
    w = Tensor(rng.standard_normal(3), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    xt = Tensor(x_last, dtype=np.float64, requires_grad=True)
    r = Tensor(g_last)
    assert gradcheck(lambda a, w, b: (F.batch_norm(a, None, None, w, b, training=True)
                                      * r).sum(), [xt, w, b])
