"""The reused big arrays of the array ops (``tinygrad_edu.workspace``): an array is handed out
again only when nothing refers to it, so a saved array is never overwritten before the
backward that reads it -- two forward passes before one backward, a layer used twice in
one graph and a kept gradient all give the same gradients as without reuse."""

from __future__ import annotations

import numpy as np
import pytest
from suite_tolerances import gradcheck

from tinygrad_edu import Tensor, cross_entropy, nn
from tinygrad_edu import workspace as ws
from tinygrad_edu.models import build_model


@pytest.fixture
def reuse_everything(monkeypatch):
    """Every array of any size goes through the workspace (small test sizes too)."""
    monkeypatch.setattr(ws, "_WORKSPACE_MIN_BYTES", 0)
    monkeypatch.setattr(ws, "_workspace", {})
    monkeypatch.setattr(ws, "_workspace_bytes", [0])


@pytest.fixture
def reuse_nothing(monkeypatch):
    """The workspace disabled: every call is np.empty (the reference)."""
    monkeypatch.setattr(ws, "_IDLE", -1)


def test_an_array_is_reused_only_when_nothing_refers_to_it(reuse_everything) -> None:
    a = ws.workspace("t", (4, 5), np.float32)
    b = ws.workspace("t", (4, 5), np.float32)
    assert b is not a  # a is still held here
    a_id = id(a)
    del a
    assert id(ws.workspace("t", (4, 5), np.float32)) == a_id  # idle again: reused
    view = b[1:]
    del b
    c = ws.workspace("t", (4, 5), np.float32)
    assert c.base is None and not np.shares_memory(c, view)  # a view keeps b busy
    assert ws.workspace("t", (4, 5), np.float64).dtype == np.float64  # keyed by dtype
    assert ws.workspace("u", (4, 5), np.float32) is not c  # and by tag


def test_small_arrays_bypass_it() -> None:
    a = ws.workspace("small", (8,), np.float32)
    del a
    assert ("small", (8,), np.dtype(np.float32)) not in ws._workspace


def test_a_training_step_reuses_the_conv_arrays_of_the_last(reuse_everything) -> None:
    """The mechanism does something: after a step's graph is gone, the next step's
    convolution writes its output into the same memory."""
    model = build_model("cnn", rng=0)
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    first = model[0](Tensor(x))
    address = first.data.__array_interface__["data"][0]
    del first
    second = model[0](Tensor(x))
    assert second.data.__array_interface__["data"][0] == address


def _gradients(model: nn.Module, batches: list[tuple[np.ndarray, np.ndarray]]) -> list:
    """Parameter gradients of the sum of the batches' losses, all forwards first."""
    model.zero_grad()
    losses = [cross_entropy(model(Tensor(x)), y) for x, y in batches]
    total = losses[0]
    for loss in losses[1:]:
        total = total + loss
    total.backward()
    return [p.grad.copy() for p in model.parameters()]


def _cnn64(batch_norm: bool) -> nn.Module:
    model = build_model("cnn", rng=0, batch_norm=batch_norm)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    return model


@pytest.mark.parametrize("batch_norm", [False, True])
def test_two_forwards_before_one_backward(batch_norm: bool, monkeypatch) -> None:
    """Two batches through the same layers, then one backward: the same gradients with the
    workspace as without it (float64, to the last bits a reordering could change)."""
    rng = np.random.default_rng(1)
    batches = [(rng.random((3, 1, 28, 28)), rng.integers(0, 10, 3)) for _ in range(2)]
    monkeypatch.setattr(ws, "_IDLE", -1)
    expected = _gradients(_cnn64(batch_norm), batches)
    monkeypatch.undo()
    monkeypatch.setattr(ws, "_WORKSPACE_MIN_BYTES", 0)
    model = _cnn64(batch_norm)
    for _ in range(2):  # the second time, arrays of the first graph are idle and reused
        got = _gradients(model, batches)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-15)


def test_a_layer_used_twice_in_one_graph(reuse_everything) -> None:
    """conv → conv (the same layer, same shapes: the same workspace keys) → pool: central
    differences agree (float64)."""
    rng = np.random.default_rng(2)
    conv = nn.Conv2d(2, 2, 3, padding=1, rng=0)
    w = Tensor(conv.weight.data.astype(np.float64), requires_grad=True)
    b = Tensor(rng.standard_normal(2), requires_grad=True)
    x = Tensor(rng.standard_normal((2, 2, 8, 8)), requires_grad=True)
    r = rng.standard_normal((2, 2, 4, 4))
    conv2d, pool = nn.functional.conv2d, nn.functional.max_pool2d

    def fn(x, w, b):
        h = conv2d(x, w, b, padding=1)
        return (pool(conv2d(h, w, b, padding=1), 2) * Tensor(r)).sum()

    gradcheck(fn, [x, w, b])


def test_a_kept_gradient_is_not_overwritten(reuse_everything) -> None:
    """An input gradient the user keeps (a view of a workspace array) survives the next
    step's backward."""
    conv = nn.Conv2d(3, 4, 3, padding=1, rng=0)
    rng = np.random.default_rng(3)
    x1 = Tensor(rng.random((2, 3, 6, 6), dtype=np.float32), requires_grad=True)
    conv(x1).sum().backward()
    kept = x1.grad
    snapshot = kept.copy()
    x2 = Tensor(rng.random((2, 3, 6, 6), dtype=np.float32) * 5, requires_grad=True)
    (conv(x2) * 3.0).sum().backward()
    np.testing.assert_array_equal(kept, snapshot)
    assert not np.shares_memory(kept, x2.grad)


def test_kept_memory_is_bounded(reuse_everything, monkeypatch) -> None:
    """At most ``_WORKSPACE_MAX_BYTES`` are kept: older keys are forgotten first, and an
    array larger than the bound is never kept (a one-off huge batch does not stay)."""
    monkeypatch.setattr(ws, "_WORKSPACE_MAX_BYTES", 1000)
    ws.workspace("a", (100,), np.float32)  # 400 bytes, kept
    ws.workspace("b", (100,), np.float32)  # 800 kept
    ws.workspace("c", (100,), np.float32)  # "a" is forgotten to make room
    assert [k[0] for k in ws._workspace] == ["b", "c"]
    assert ws._workspace_bytes[0] == 800
    ws.workspace("huge", (1000,), np.float32)  # 4,000 bytes: never kept, evicts nothing
    assert [k[0] for k in ws._workspace][:2] == ["b", "c"]
    assert ws._workspace_bytes[0] == 800
    assert all(a.nbytes <= 1000 for arrays in ws._workspace.values() for a in arrays)
    assert ws._workspace_bytes[0] == sum(a.nbytes for arrays in ws._workspace.values()
                                             for a in arrays)
