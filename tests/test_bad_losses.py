"""Bad inputs to the losses (issue 13, section 3): errors name the loss that was called
(``nll_loss``, not ``cross_entropy``), lists and 3-D scores are refused by name, labels that
are not whole numbers (inf, NaN, 1.5) are named, and an empty batch is an error, not NaN."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu import Tensor
from tinygrad_edu.losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss

CLASS_LOSSES = {"cross_entropy": cross_entropy, "nll_loss": nll_loss}
WHAT = {"cross_entropy": "logits", "nll_loss": "log_probs"}


@pytest.mark.parametrize("name", sorted(CLASS_LOSSES))
def test_errors_name_the_loss_that_was_called(name) -> None:
    loss = CLASS_LOSSES[name]
    with pytest.raises(ValueError, match=rf"{name}: labels must be in \[0, 2\]"):
        loss(Tensor(np.zeros((2, 3))), [0, 5])
    with pytest.raises(ValueError, match=f"{name}: labels of shape"):
        loss(Tensor(np.zeros((2, 3))), [0, 1, 2])
    with pytest.raises(TypeError, match=f"{name}: labels must be integers"):
        loss(Tensor(np.zeros((2, 3))), ["a", "b"])


@pytest.mark.parametrize("name", sorted(CLASS_LOSSES))
@pytest.mark.parametrize("scores", [[[0.0, 1.0]], np.zeros((1, 2))], ids=["list", "ndarray"])
def test_scores_must_be_a_tensor(name, scores) -> None:
    with pytest.raises(TypeError, match=f"{name}: {WHAT[name]} must be a Tensor"):
        CLASS_LOSSES[name](scores, [0])


@pytest.mark.parametrize("name", sorted(CLASS_LOSSES))
@pytest.mark.parametrize("shape", [(2, 3, 4), (3,), ()])
def test_scores_must_be_two_dimensional(name, shape) -> None:
    with pytest.raises(ValueError, match=rf"{name}: {WHAT[name]} must have shape \(N, C\)"):
        CLASS_LOSSES[name](Tensor(np.zeros(shape)), [0, 1])


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(sorted(CLASS_LOSSES)),
       bad=st.one_of(st.sampled_from([np.inf, -np.inf, np.nan]),
                     st.floats(0.01, 1.99).filter(lambda v: v != 1.0)))
def test_labels_that_are_not_whole_numbers_are_named(name, bad) -> None:
    with pytest.raises(TypeError, match=rf"{name}: labels must be integers \(whole numbers\)"):
        CLASS_LOSSES[name](Tensor(np.zeros((2, 3))), [0.0, bad])


def test_an_infinite_label_is_reported_as_such() -> None:
    with pytest.raises(TypeError, match="got inf") as info:
        cross_entropy(Tensor(np.zeros((2, 3))), [0, float("inf")])
    assert "9223372036854775808" not in str(info.value)


@pytest.mark.parametrize("name", sorted(CLASS_LOSSES))
@pytest.mark.parametrize("shape", [(0, 10), (4, 0)])
def test_an_empty_batch_is_an_error_not_nan(name, shape) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=f"{name}: .*empty batch or no classes"):
            CLASS_LOSSES[name](Tensor(np.zeros(shape)), np.zeros(shape[0], dtype=int))


@pytest.mark.parametrize(("loss", "name"), [
    (mse_loss, "mse_loss: prediction"),
    (binary_cross_entropy_with_logits, "binary_cross_entropy_with_logits: logits"),
])
def test_elementwise_losses_need_a_tensor_and_something_to_average(loss, name) -> None:
    with pytest.raises(TypeError, match=f"{name} must be a Tensor"):
        loss([1.0, 2.0], [1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="empty input"):
            loss(Tensor(np.zeros(0)), np.zeros(0))


def test_whole_float_labels_still_work() -> None:
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    a = cross_entropy(x, np.array([0.0, 2.0]))
    b = cross_entropy(Tensor(np.zeros((2, 3))), [0, 2])
    assert a.item() == b.item()
    assert np.isclose(nll_loss(Tensor(np.log(np.full((2, 3), 1 / 3))), [1, 1]).item(), np.log(3))


@pytest.mark.parametrize("eps", [-0.1, 1.0, 1.5, float("nan")])
def test_label_smoothing_outside_zero_one_is_named(eps) -> None:
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0, 1\)"):
        cross_entropy(Tensor(np.zeros((2, 3))), [0, 1], label_smoothing=eps)
