"""Bad optimizer arguments (issue 13, section 3): every hyperparameter is checked when the
optimizer is made (NaN, inf, strings, betas[0] = 1...), and the parameter list must be
Tensors, leaves, each once -- never a silent double update or a model that trains nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu import Tensor, nn, optim

OPTIMIZERS = {"SGD": optim.SGD, "Adam": optim.Adam, "AdamW": optim.AdamW}


def _params() -> list[Tensor]:
    return [Tensor(np.ones(2), requires_grad=True)]


BAD_REALS = [math.nan, math.inf, -math.inf, "0.1", None, True, 1j, [0.1]]

HYPERS = [("SGD", "lr"), ("SGD", "momentum"), ("SGD", "weight_decay"), ("Adam", "lr"),
          ("Adam", "eps"), ("Adam", "weight_decay"), ("AdamW", "lr"), ("AdamW", "weight_decay")]


@pytest.mark.parametrize("bad", BAD_REALS, ids=repr)
@pytest.mark.parametrize(("name", "key"), HYPERS)
def test_hyperparameters_must_be_finite_real_numbers(name, key, bad) -> None:
    label = "learning rate lr" if key == "lr" else key
    with pytest.raises((TypeError, ValueError), match=f"{name}: {label} must be"):
        OPTIMIZERS[name](_params(), **{key: bad})


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(["SGD", "Adam"]),
       key=st.sampled_from(["lr", "weight_decay"]),
       value=st.floats(max_value=-1e-300, allow_nan=False, allow_infinity=False))
def test_negative_hyperparameters_are_value_errors(name, key, value) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        OPTIMIZERS[name](_params(), **{key: value})


@pytest.mark.parametrize("momentum", [1.0, 1.5, -0.1])
def test_momentum_is_in_zero_one(momentum) -> None:
    with pytest.raises(ValueError, match="SGD: momentum must be finite, >= 0 and < 1"):
        optim.SGD(_params(), lr=0.1, momentum=momentum)


@pytest.mark.parametrize(("betas", "error", "match"), [
    ((1.0, 0.999), ValueError, r"betas\[0\] must be finite, >= 0 and < 1"),
    ((0.9, 1.0), ValueError, r"betas\[1\] must be"),
    ((-0.1, 0.9), ValueError, r"betas\[0\] must be"),
    ((math.nan, 0.9), ValueError, r"betas\[0\] must be"),
    (("a", 0.9), TypeError, r"betas\[0\] must be a real number"),
    ((0.9,), TypeError, "betas must be a pair"),
    (0.9, TypeError, "betas must be a pair"),
])
def test_adam_betas(betas, error, match) -> None:
    for cls in (optim.Adam, optim.AdamW):
        with pytest.raises(error, match=match):
            cls(_params(), betas=betas)


def test_nesterov_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="nesterov must be True or False"):
        optim.SGD(_params(), lr=0.1, momentum=0.9, nesterov="yes")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_parameter_listed_twice_is_refused(name) -> None:
    p = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="parameter 1 is parameter 0 again"):
        OPTIMIZERS[name]([p, p])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_tensor_instead_of_a_list_is_refused(name) -> None:
    with pytest.raises(TypeError, match="params must be an iterable of Tensors"):
        OPTIMIZERS[name](Tensor(np.ones((3, 2)), requires_grad=True))
    with pytest.raises(TypeError, match="params must be an iterable of Tensors"):
        OPTIMIZERS[name](nn.Linear(2, 2))  # a Module: pass model.parameters()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_non_leaf_tensors_are_refused(name) -> None:
    p = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"parameter 0 is not a leaf \(it was computed by mul\)"):
        OPTIMIZERS[name]([p * 2.0])


def test_valid_arguments_still_train() -> None:
    p = Tensor(np.array([1.0]), requires_grad=True)
    opt = optim.SGD([p], lr=np.float32(0.5), momentum=0, weight_decay=np.int64(0))
    p.grad = np.array([1.0])
    opt.step()
    assert p.data[0] == 0.5 and opt.lr == 0.5
