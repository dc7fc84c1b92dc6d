"""Anomaly mode: the first op that makes NaN/inf, forward or backward, named with the user's line."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from tinygrad_edu import (
    AnomalyError,
    Tensor,
    Value,
    detect_anomaly,
    is_anomaly_enabled,
    nn,
    set_detect_anomaly,
)
from tinygrad_edu import anomaly as anomaly_module
from tinygrad_edu.hooks import AnomalyMode

HERE = "test_anomaly.py"


def _next_line() -> int:
    """The line number after the caller's current line."""
    return inspect.currentframe().f_back.f_lineno + 1


def test_forward_nan_names_log_its_input_and_the_line() -> None:
    x = Tensor(np.array([2.0, -1.0, 3.0]), requires_grad=True)
    with np.errstate(invalid="ignore"), detect_anomaly(), pytest.raises(AnomalyError) as info:
        h = x * 2.0  # fine
        line = _next_line()
        y = h.log()  # log of a negative: NaN
        y.sum()  # never reached
    err = info.value
    assert (err.phase, err.op) == ("forward", "log")
    assert f"{HERE}:{line} in test_forward_nan" in err.site
    text = str(err)
    assert text.startswith("forward of op 'log' produced nan (1 of 3 values)")
    assert "input 0: shape (3,), float64, range [-2, 6]" in text
    assert f"{HERE}:{line} in test_forward_nan_names_log_its_input_and_the_line: y = h.log()" \
        in text
    assert not is_anomaly_enabled()  # restored after the error


def test_backward_first_bad_op_is_sqrt_at_zero() -> None:
    a = Tensor(np.array([0.0, 4.0]), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"), detect_anomaly():
        x = a * 1.0  # its backward would get inf too: the error must stop before it
        line = _next_line()
        y = x.sqrt()  # fine in forward: sqrt(0) = 0
        loss = (y * 3.0).sum()
        with pytest.raises(AnomalyError) as info:
            loss.backward()
    err = info.value
    assert (err.phase, err.op) == ("backward", "sqrt")
    assert f"{HERE}:{line} in test_backward_first_bad_op_is_sqrt_at_zero: y = x.sqrt()" in err.site
    text = str(err)
    assert text.startswith("backward of op 'sqrt' produced inf (1 of 2 values) in the gradient "
                           "for input 0")
    assert "input 0: shape (2,), float64, range [0, 4]" in text
    assert "upstream gradient: shape (2,), float64, range [3, 3]" in text
    assert a.grad is None  # stopped before reaching the leaf


def test_without_anomaly_mode_the_nan_just_flows() -> None:
    a = Tensor(np.array([0.0, 4.0]), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        (a.sqrt() * 0.0).sum().backward()  # 0 × inf = nan, silently
    assert np.isnan(a.grad[0])


def test_value_engine_overflow_in_forward() -> None:
    a, b = Value(1e200), Value(1e200)
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"forward of op 'mul' produced inf"
                                         ) as info:
        line = _next_line()
        a * b
    assert f"{HERE}:{line} in" in info.value.site
    assert "input 0: value 1e+200" in str(info.value)


def test_layer_call_names_the_user_line_and_the_layer() -> None:
    lin = nn.Linear(2, 2)
    with np.errstate(invalid="ignore"), detect_anomaly(), pytest.raises(AnomalyError) as info:
        line = _next_line()
        lin(Tensor(np.array([[np.inf, 1.0]], np.float32)))
    text = str(info.value)
    assert info.value.op == "linear"
    assert f"{HERE}:{line}" in text
    assert "via tinygrad_edu/nn/linear.py:" in text
    assert "an input was already not finite" in text


def test_finite_run_is_unchanged_by_anomaly_mode() -> None:
    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.Tanh(), nn.Linear(4, 2, rng=rng))
    x = Tensor(rng.standard_normal((5, 3)))
    net(x).sum().backward()
    plain = [p.grad.copy() for p in net.parameters()]
    net.zero_grad()
    with detect_anomaly():
        out = net(x)
        out.sum().backward()
    for p, g in zip(net.parameters(), plain):
        np.testing.assert_array_equal(p.grad, g)
    assert f"{HERE}:" in anomaly_module.creation_site(out)


def test_off_costs_nothing_no_capture_no_check(monkeypatch: pytest.MonkeyPatch) -> None:
    plain_tensor, plain_value = Tensor._make, Value._make
    calls = []
    original = anomaly_module._capture
    monkeypatch.setattr(anomaly_module, "_capture", lambda: calls.append(1) or original())
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2.0).tanh().sum()
    y.backward()
    (Value(1.0) * 2.0).backward()
    assert calls == []  # no stack looked at when the mode is off
    assert anomaly_module.creation_site(y) is None
    assert AnomalyMode.check is None
    with detect_anomaly():
        assert Tensor._make is not plain_tensor
        z = (x * 2.0).sum()
    assert len(calls) == 2
    # off again: the engines' own functions are back, not a wrapper that tests a flag
    assert Tensor._make is plain_tensor and Value._make is plain_value
    assert AnomalyMode.check is None
    assert anomaly_module.creation_site(z) is not None


def test_set_detect_anomaly_and_nesting() -> None:
    set_detect_anomaly(True)
    try:
        assert is_anomaly_enabled()
        with detect_anomaly():
            pass
        assert is_anomaly_enabled()  # the inner block restores "on"
        with set_detect_anomaly(False):
            assert not is_anomaly_enabled()
        assert is_anomaly_enabled()
    finally:
        set_detect_anomaly(False)
    assert not is_anomaly_enabled()

    @detect_anomaly()
    def decorated() -> bool:
        return is_anomaly_enabled()

    assert decorated() and not is_anomaly_enabled()


def test_nan_seed_gradient_is_reported() -> None:
    x = Tensor(np.ones(2), requires_grad=True)
    with detect_anomaly():
        y = x * 2.0
        with pytest.raises(AnomalyError, match="the gradient arriving at op 'mul' holds nan"):
            y.backward(np.array([np.nan, 1.0]))
