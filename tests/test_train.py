"""The training loop: a short real MNIST run, determinism, NaN handling, flat memory."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import optim
from tinygrad_edu.datasets import load_mnist
from tinygrad_edu.models import build_model, prepare_inputs
from tinygrad_edu.nn import functional as F
from tinygrad_edu.runtime import blas_threads, set_blas_threads
from tinygrad_edu.train import (
    EpochResult,
    TrainingDiverged,
    evaluate,
    fit,
    make_optimizer,
    train_epoch,
)

#: The short real run (the first 6,000 training images, two epochs of SGD with momentum,
#: batch 32) must reach this accuracy on the first 2,000 test images.  Seeds 0-5 measure
#: 89.3-91.1% (seed 0: 90.4%), so 87% leaves a margin of more than two points.
SHORT_RUN_THRESHOLD = 0.87


pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def mnist(real_mnist_dir: Path) -> tuple[np.ndarray, ...]:
    """The real MNIST (conftest: ../shared/data/mnist, or fetched once into the user cache)."""
    return load_mnist(real_mnist_dir, download=False)


def _mlp_data(mnist: tuple[np.ndarray, ...], n_train: int, n_test: int) -> tuple:
    x, y, x_test, y_test = mnist
    return (prepare_inputs("mlp", x[:n_train]), y[:n_train],
            prepare_inputs("mlp", x_test[:n_test]), y_test[:n_test])


def _run(data: tuple, seed: int, epochs: int = 1, lr: float = 0.02, sizes: list | None = None):
    model = build_model("mlp", rng=seed, **({"sizes": sizes} if sizes else {}))
    optimizer = make_optimizer("sgd", model.parameters(), lr=lr, momentum=0.9)
    results = fit(model, optimizer, data, epochs=epochs, batch_size=32, seed=seed)
    return model, results


def test_short_real_run_beats_threshold(mnist: tuple) -> None:
    data = _mlp_data(mnist, 6000, 2000)
    model, results = _run(data, seed=0, epochs=2)
    assert len(results) == 2
    result = results[-1]
    assert result.test_accuracy >= SHORT_RUN_THRESHOLD, result
    assert evaluate(model, data[2], data[3]) == result.test_accuracy
    assert 0.0 < result.loss < 1.0 and result.train_accuracy > 0.8
    assert result.seconds > 0 and result.images_per_second > 0


def test_same_seed_gives_identical_weights_and_loss(mnist: tuple) -> None:
    data = _mlp_data(mnist, 1000, 200)
    model_a, results_a = _run(data, seed=7, epochs=2, sizes=[784, 32, 10])
    model_b, results_b = _run(data, seed=7, epochs=2, sizes=[784, 32, 10])
    _, results_c = _run(data, seed=8, epochs=2, sizes=[784, 32, 10])
    assert [r.loss for r in results_a] == [r.loss for r in results_b]
    assert [r.loss for r in results_a] != [r.loss for r in results_c]
    a, b = model_a.state_dict(), model_b.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_same_seed_with_dropout_is_reproducible(mnist: tuple) -> None:
    data = _mlp_data(mnist, 500, 100)

    def run() -> float:
        model = build_model("mlp", rng=3, sizes=[784, 32, 10], dropout=0.5)
        opt = make_optimizer("adam", model.parameters(), lr=1e-3)
        return fit(model, opt, data, epochs=1, batch_size=50, seed=3)[0].loss

    assert run() == run()


def test_evaluate_uses_eval_mode_and_restores_it() -> None:
    model = build_model("mlp", rng=0, sizes=[784, 16, 10], dropout=0.5)
    x = np.random.default_rng(0).random((50, 784), dtype=np.float32)
    y = np.zeros(50, dtype=np.int64)
    first = evaluate(model, x, y, batch_size=7)
    assert model.training
    assert evaluate(model, x, y) == first  # dropout off: batching and calls do not matter
    model.eval()
    evaluate(model, x, y)
    assert not model.training


def test_fit_steps_scheduler_and_reports_each_epoch(mnist: tuple) -> None:
    data = _mlp_data(mnist, 300, 100)
    model = build_model("mlp", rng=0, sizes=[784, 16, 10])
    opt = make_optimizer("sgd", model.parameters(), lr=0.1)
    scheduler = optim.StepLR(opt, step_size=1, gamma=0.5)
    seen: list[EpochResult] = []
    results = fit(model, opt, data, epochs=3, batch_size=100, seed=0, scheduler=scheduler,
                  on_epoch=seen.append)
    assert seen == results
    assert [r.epoch for r in results] == [1, 2, 3]
    assert [r.epoch_lr for r in results] == pytest.approx([0.1, 0.05, 0.025])


def test_fit_without_test_set(mnist: tuple) -> None:
    x, y, _, _ = _mlp_data(mnist, 200, 0)
    model = build_model("mlp", rng=0, sizes=[784, 16, 10])
    opt = make_optimizer("adamw", model.parameters(), lr=1e-3, weight_decay=0.01)
    (result,) = fit(model, opt, (x, y, None, None), epochs=1, batch_size=64)
    assert result.test_accuracy is None


def test_nan_weights_stop_training_before_the_step() -> None:
    model = build_model("mlp", rng=0, sizes=[784, 8, 10])
    model.parameters()[0].data[0, 0] = np.nan
    before = {k: v.copy() for k, v in model.state_dict().items()}
    opt = make_optimizer("sgd", model.parameters(), lr=0.1)
    x = np.random.default_rng(0).random((64, 784), dtype=np.float32)
    y = np.arange(64) % 10
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 1, step 1") as info:
        train_epoch(model, opt, x, y, batch_size=32, seed=0)
    assert (info.value.epoch, info.value.step) == (1, 1)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k], equal_nan=True) for k in before)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow warnings on the way
def test_huge_learning_rate_diverges_with_a_clear_message(mnist: tuple) -> None:
    data = _mlp_data(mnist, 2000, 100)
    model = build_model("mlp", rng=0, sizes=[784, 64, 10])
    opt = make_optimizer("sgd", model.parameters(), lr=1e8, momentum=0.9)
    with pytest.raises(TrainingDiverged, match=r"training diverged: .* at epoch \d+, step \d+"):
        fit(model, opt, data, epochs=3, batch_size=64, seed=0)


def test_injected_nan_loss_reports_epoch_and_step(
    mnist: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _mlp_data(mnist, 640, 100)
    real = F.cross_entropy
    calls = {"n": 0}

    def nan_on_step_14(logits, labels):
        calls["n"] += 1
        loss = real(logits, labels)
        return loss * math.nan if calls["n"] == 14 else loss

    monkeypatch.setattr(F, "cross_entropy", nan_on_step_14)
    epochs_done: list[int] = []
    model = build_model("mlp", rng=0, sizes=[784, 16, 10])
    opt = make_optimizer("sgd", model.parameters(), lr=0.05)
    with pytest.raises(TrainingDiverged) as info:
        fit(model, opt, data, epochs=3, batch_size=64, seed=0,
            on_epoch=lambda r: epochs_done.append(r.epoch))
    assert (info.value.epoch, info.value.step) == (2, 4)  # 10 steps per epoch
    assert epochs_done == [1]
    assert all(np.isfinite(p.data).all() for p in model.parameters())


def test_memory_stays_flat_across_epochs(mnist: tuple) -> None:
    x, y, _, _ = _mlp_data(mnist, 2000, 0)
    model = build_model("mlp", rng=0, sizes=[784, 64, 10])
    opt = make_optimizer("adam", model.parameters(), lr=1e-3)
    tracemalloc.start()
    try:
        sizes = []
        for epoch in range(1, 6):
            train_epoch(model, opt, x, y, batch_size=100, seed=0, epoch=epoch)
            sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    growth = max(sizes[1:]) - sizes[1]
    assert growth < 256 * 1024, sizes  # a leaked graph per step would cost megabytes


def test_blas_threads_can_be_set_and_read() -> None:
    if blas_threads() is None:  # numpy's BLAS is not OpenBLAS, or not on Linux
        assert not set_blas_threads(1)
    else:
        assert set_blas_threads(1) and blas_threads() == 1
