"""Bad arguments to layers and models (issue 13, section 3): each is refused where it was
written, with an error naming the layer and the argument -- never a ZeroDivisionError,
"math domain error", a numpy broadcast message or an AttributeError later."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu import Tensor, nn

LAYERS = {
    "Linear": lambda v: nn.Linear(v, 5),
    "Linear-out": lambda v: nn.Linear(5, v),
    "Conv2d-in": lambda v: nn.Conv2d(v, 2, 3),
    "Conv2d-out": lambda v: nn.Conv2d(1, v, 3),
    "Conv2d-kernel": lambda v: nn.Conv2d(1, 2, kernel_size=v),
    "Conv2d-stride": lambda v: nn.Conv2d(1, 2, 3, stride=v),
    "MaxPool2d": lambda v: nn.MaxPool2d(v),
    "AvgPool2d-stride": lambda v: nn.AvgPool2d(2, stride=v),
    "BatchNorm1d": lambda v: nn.BatchNorm1d(v),
    "BatchNorm2d": lambda v: nn.BatchNorm2d(v),
    "MLP": lambda v: nn.MLP([4, v, 2]),
}
NAMES = {"Linear": "in_features", "Linear-out": "out_features", "Conv2d-in": "in_channels",
         "Conv2d-out": "out_channels", "Conv2d-kernel": "kernel_size", "Conv2d-stride": "stride",
         "MaxPool2d": "kernel_size", "AvgPool2d-stride": "stride", "BatchNorm1d": "num_features",
         "BatchNorm2d": "num_features", "MLP": r"sizes\[1\]"}


@settings(max_examples=30, deadline=None)
@given(layer=st.sampled_from(sorted(LAYERS)), value=st.integers(-10**9, 0))
def test_sizes_below_one_are_value_errors(layer: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"{NAMES[layer]} must be >= 1, got {value}"):
        LAYERS[layer](value)


@pytest.mark.parametrize("value", [2.5, "3", None, True, 1j, np.float64(3.0)], ids=repr)
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_sizes_that_are_not_ints_are_type_errors(layer: str, value) -> None:
    if layer == "AvgPool2d-stride" and value is None:  # the documented default: the kernel
        assert LAYERS[layer](value).stride == (2, 2)
        return
    with pytest.raises(TypeError, match=f"{NAMES[layer]} must be an int"):
        LAYERS[layer](value)


@pytest.mark.parametrize("padding", [-1, (0, -2)])
def test_negative_padding_is_refused(padding) -> None:
    with pytest.raises(ValueError, match="Conv2d: padding must be >= 0"):
        nn.Conv2d(1, 2, 3, padding=padding)
    x = np.ones((1, 1, 5, 5))
    w = Tensor(np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="conv2d: padding must be >= 0"):
        nn.conv2d(Tensor(x), w, padding=padding)


@pytest.mark.parametrize("pair", [(1, 2, 3), ()])
def test_a_pair_argument_of_the_wrong_length(pair) -> None:
    with pytest.raises(ValueError, match="kernel_size must be an int or a pair"):
        nn.Conv2d(1, 2, kernel_size=pair)


def test_numpy_integers_are_accepted_as_sizes() -> None:
    layer = nn.Linear(np.int64(3), np.int32(2))
    assert layer.weight.shape == (2, 3) and type(layer.in_features) is int
    assert nn.Conv2d(1, 2, kernel_size=(np.int64(3), 3)).kernel_size == (3, 3)


@pytest.mark.parametrize("activation", [None, 3, 1.5, ["relu"]])
def test_mlp_activation_must_be_a_name_or_a_module(activation) -> None:
    with pytest.raises(TypeError, match="activation must be a registry activation name"):
        nn.MLP([4, 3, 2], activation=activation)


def test_mlp_sizes_must_be_a_list_of_ints() -> None:
    with pytest.raises(TypeError, match="MLP: sizes must be a list of ints"):
        nn.MLP(784)
    with pytest.raises(TypeError, match="MLP: sizes must be a list of ints"):
        nn.MLP("784")


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"eps": 0.0}, ValueError, r"eps must be in \(0, inf\]"),
    ({"eps": -1e-5}, ValueError, "eps must be in"),
    ({"eps": "1e-5"}, TypeError, "eps must be a real number"),
    ({"momentum": 1.5}, ValueError, r"momentum must be in \[0, 1\]"),
    ({"momentum": float("nan")}, ValueError, "momentum must be in"),
])
def test_batchnorm_hyperparameters(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        nn.BatchNorm1d(3, **kwargs)


@pytest.mark.parametrize("p", ["0.5", None, 1j])
def test_dropout_probability_must_be_a_number(p) -> None:
    with pytest.raises(TypeError, match="Dropout: p must be a number"):
        nn.Dropout(p)


@pytest.mark.parametrize("state", [None, [("weight", np.ones((2, 2)))], "weights.npz", 3])
def test_load_state_dict_needs_a_mapping(state) -> None:
    layer = nn.Linear(2, 2, rng=0)
    before = layer.weight.data.copy()
    with pytest.raises(TypeError, match="state must be a mapping of names to arrays"):
        layer.load_state_dict(state)
    np.testing.assert_array_equal(layer.weight.data, before)
