"""The command line met as a careless or hostile user would: every bad argument or output path is
one readable line and a non-zero exit, found before any work starts; ``--debug`` shows the
traceback; a diverged run is a failure and saves no non-finite model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from cli_run import run_cli
from hypothesis import example, given
from hypothesis import strategies as st

from tinygrad_edu import runtime
from tinygrad_edu.checkpoint import read_checkpoint
from tinygrad_edu.cli import train as train_cli
from tinygrad_edu.cli.common import UsageError
from tinygrad_edu.cli.graph import parse_assignments
from tinygrad_edu.runtime import blas_threads

DIGITS_401 = "1" * 401


pytestmark = pytest.mark.usefixtures("restore_blas_threads")


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


# --------------------------------------------------------------------------- bad arguments

BAD_TRAIN_ARGS = [
    (["--seed", "-1"], "--seed"),
    (["--seed", DIGITS_401], "--seed"),
    (["--weight-decay", "-10"], "--weight-decay"),
    (["--weight-decay", "nan"], "--weight-decay"),
    (["--momentum", "nan"], "--momentum"),
    (["--momentum", "-0.5"], "--momentum"),
    (["--momentum", "inf"], "--momentum"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--lr", DIGITS_401], "--lr"),
    (["--epochs", DIGITS_401], "--epochs"),
    (["--threads", "-2"], "--threads"),
    (["--batch-size", "1e3"], "--batch-size"),
]


@pytest.mark.parametrize(("extra", "option"), BAD_TRAIN_ARGS)
def test_bad_train_argument_is_one_line_exit_2_before_any_work(
    extra: list[str], option: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(train_cli, "load_mnist", lambda *a, **k: pytest.fail("data loaded"))
    code, out, err = run_cli(["train", "--model", "mlp", *extra], capsys)
    assert code == 2 and out == ""
    (error,) = error_lines(err)
    assert f"argument {option}" in error and "Traceback" not in err
    assert len(error) < 200  # readable: a 401-digit number is not echoed whole
    assert "smaller --lr" not in err


@pytest.mark.parametrize("target", ["folder", "under a file", "missing folder"])
def test_bad_out_is_found_before_the_data_is_loaded(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(train_cli, "load_mnist", lambda *a, **k: pytest.fail("data loaded"))
    (tmp_path / "file").write_text("x")
    out_path = {"folder": tmp_path, "under a file": tmp_path / "file" / "m.npz",
                "missing folder": tmp_path / "file" / "deeper" / "m.npz"}[target]
    code, _, err = run_cli(["train", "--model", "mlp", "--out", str(out_path)], capsys)
    assert code == 2
    (error,) = error_lines(err)
    assert error.startswith("tinygrad-edu train: error: --out ")


def test_out_in_a_folder_still_to_create_is_accepted(tmp_path: Path) -> None:
    from tinygrad_edu.cli.common import check_output_path

    assert check_output_path(tmp_path / "a" / "b" / "m.npz", "--out", create_parents=True)


@pytest.mark.parametrize("argv", [
    ["explain", f"x*{DIGITS_401}", "--set", "x=1"],
    ["explain", "x", "--set", f"x={DIGITS_401}"],
    ["explain", "x", "--set", "x=1e999"],
    ["explain", "x", "--set", "x=nan"],
    ["graph", "expr", "--expr", f"x+{DIGITS_401}", "--set", "x=2"],
    ["graph", "expr", "--expr", "x", "--set", f"x={DIGITS_401}"],
    ["explain", "x", "--set", "x=1", "x=2"],
    ["explain", "x*y", "--set", "x=1,y=2,x=3"],
])
def test_bad_numbers_and_repeated_names_are_one_line_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and len(lines[0]) < 200


def test_repeated_set_names_the_name(capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(["explain", "x", "--set", "x=1", "x=2"], capsys)
    with pytest.raises(ValueError, match="--set x given twice"):
        parse_assignments(["x=1", "x=2"])


def test_sqrt_at_zero_is_one_line_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    """The engines' policy at a pole is IEEE: the table shows an infinite local gradient,
    and numpy's RuntimeWarning is one note on stderr, without numpy's file path and our
    source line."""
    code, out, err = run_cli(["explain", "sqrt(x)", "--set", "x=0"], capsys)
    assert code == 0 and "x.grad = inf" in out
    note = ("tinygrad-edu explain: note: numpy: divide by zero encountered in scalar divide "
            "(the result is an IEEE inf or nan)")
    assert err.splitlines() == [note], err


@pytest.mark.parametrize("option", ["--json", "--html", "--svg"])
@pytest.mark.parametrize("where", ["missing folder", "onto a folder"])
def test_explain_outputs_are_checked_before_work(
    option: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nope" / "out.x" if where == "missing folder" else tmp_path
    code, out, err = run_cli(["explain", "x*w", "--set", "x=1", "w=2", option, str(path)], capsys)
    assert code == 2 and out == ""  # the table is not printed first
    (error,) = error_lines(err)
    assert option in error and str(path) in error


@pytest.mark.parametrize("option", ["--activations", "-o"])
@pytest.mark.parametrize("where", ["missing folder", "onto a folder"])
def test_graph_outputs_are_checked_before_work(
    option: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nope" / "g.dot" if where == "missing folder" else tmp_path
    argv = ["graph", "neuron", option, str(path)]
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == ""
    (error,) = error_lines(err)
    assert option in error


# --------------------------------------------------------------------------- --debug


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom\nsecond line")


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_unexpected_errors_are_one_line_unless_debug(
    debug: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(train_cli, "load_checkpoint", _boom)
    code, _, err = run_cli([*debug, "eval", "--checkpoint", str(tmp_path / "x.npz")], capsys)
    assert code == 1
    if debug:
        assert "Traceback (most recent call last)" in err and "RuntimeError: boom" in err
    else:
        assert err.strip().splitlines() == [
            ("tinygrad-edu eval: error: RuntimeError: boom second line "
             "(run with --debug for the traceback)")]


def test_debug_is_also_accepted_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train_cli, "load_checkpoint", _boom)
    code, _, err = run_cli(["eval", "--checkpoint", str(tmp_path / "x.npz"), "--debug"], capsys)
    assert code == 1 and "Traceback" in err


# --------------------------------------------------------------------------- threads, divergence


def test_threads_are_capped_at_the_available_cores(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cores = train_cli._available_cores()
    assert cores == len(os.sched_getaffinity(0))
    assert train_cli._threads(100_000) == cores
    assert f"--threads 100000 capped at the {cores}" in capsys.readouterr().err
    assert train_cli._threads(1) == 1 and capsys.readouterr().err == ""


def test_train_with_100000_threads_uses_at_most_the_cores(
    real_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[int] = []
    real = runtime.set_blas_threads
    monkeypatch.setattr(runtime, "set_blas_threads", lambda n: asked.append(n) or real(n))
    code, _, err = run_cli(["train", "--model", "mlp", "--data", str(real_mnist_dir), "--epochs",
                        "1", "--limit", "256", "--no-progress", "--threads", "100000",
                        "--out", str(tmp_path / "m.npz")], capsys)
    assert code == 0, err
    assert asked == [train_cli._available_cores()]
    assert blas_threads() is None or blas_threads() <= train_cli._available_cores()


def test_diverged_run_exits_1_and_saves_no_non_finite_model(
    real_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "m.npz"
    code, out, err = run_cli(["train", "--model", "mlp", "--data", str(real_mnist_dir), "--lr",
                          "1e6", "--epochs", "2", "--limit", "512", "--no-progress",
                          "--out", str(out_file)], capsys)
    assert code == 1
    (error,) = error_lines(err)
    assert error.startswith("tinygrad-edu train: error: training diverged")
    assert "test accuracy" not in out
    if out_file.exists():  # only an earlier, finite epoch may have been kept
        state, _, _ = read_checkpoint(out_file)
        assert all(np.isfinite(a).all() for a in state.values())


def test_finite_check_catches_overflowing_logits_with_finite_weights() -> None:
    from tinygrad_edu.models import build_model
    from tinygrad_edu.train import TrainingDiverged

    model = build_model("mlp", rng=0, sizes=[784, 8, 10])
    for p in model.parameters():
        p.data[...] = np.float32(1e30)
    with pytest.raises(TrainingDiverged, match="logit"):
        train_cli._check_finite_model(model, np.ones((4, 784), np.float32), epoch=1)
    model = build_model("mlp", rng=0, sizes=[784, 8, 10])
    train_cli._check_finite_model(model, np.ones((4, 784), np.float32), epoch=1)


def test_run_whose_logits_overflow_is_not_saved_as_a_success(
    real_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's --lr 1e6 case, made deterministic: an epoch ends with finite weights whose
    logits overflow to inf; the command must fail and write nothing."""
    from tinygrad_edu.train import EpochResult

    def exploding_fit(model, optimizer, data, epochs, *args, on_epoch=None, **kwargs):
        for p in model.parameters():
            p.data[...] = np.float32(1e30)  # finite, but x @ W overflows float32
        on_epoch(EpochResult(1, 2.3, 0.1, 0.1, 1.0, 100.0, 0.01))
        return []

    monkeypatch.setattr(train_cli, "fit", exploding_fit)
    out_file = tmp_path / "m.npz"
    code, _, err = run_cli(["train", "--model", "mlp", "--data", str(real_mnist_dir), "--epochs",
                        "1", "--limit", "256", "--no-progress", "--out", str(out_file)], capsys)
    assert code == 1 and not out_file.exists()
    (error,) = error_lines(err)
    assert "training diverged" in error and "logit" in error


# --------------------------------------------------------------------------- any text at all


@given(st.lists(st.text(max_size=30), max_size=4))
@example(["x=nan"])
@example(["x=1", "x=2"])
@example([f"x={DIGITS_401}"])
def test_any_set_text_gives_finite_values_or_a_usage_error(items: list[str]) -> None:
    try:
        values = parse_assignments(items)
    except UsageError as exc:
        assert "--set" in str(exc) and len(str(exc)) < 200
    else:
        assert all(np.isfinite(v) for v in values.values())
