"""Checkpoints: round trip, no pickles, atomic writes, clear errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinygrad_edu import checkpoint as ckpt
from tinygrad_edu.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinygrad_edu.models import build_model, default_config, prepare_inputs
from tinygrad_edu.train import evaluate

SMALL = {"sizes": [784, 32, 10]}


def _small_model(seed: int = 0):
    return build_model("mlp", rng=seed, **SMALL)


def _saved(tmp_path: Path, name: str = "model.npz", seed: int = 0) -> Path:
    path = tmp_path / name
    save_checkpoint(path, _small_model(seed), {"epoch": 3, "test_accuracy": 0.5, "seed": seed})
    return path


def test_round_trip_restores_weights_architecture_and_meta(tmp_path: Path) -> None:
    model = _small_model()
    path = save_checkpoint(tmp_path / "a.npz", model, {"epoch": 2, "optimizer": "sgd"})
    loaded, meta = load_checkpoint(path)
    assert meta["epoch"] == 2 and meta["optimizer"] == "sgd"
    assert meta["architecture"] == {"name": "mlp", "config": {**default_config("mlp"), **SMALL}}
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for key in original:
        np.testing.assert_array_equal(original[key], restored[key])


def test_loaded_model_reproduces_accuracy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = prepare_inputs("mlp", rng.random((300, 28, 28), dtype=np.float32))
    y = rng.integers(0, 10, 300)
    model = _small_model()
    path = save_checkpoint(tmp_path / "a.npz", model, {})
    loaded, _ = load_checkpoint(path)
    assert evaluate(loaded, x, y) == evaluate(model, x, y)


def test_cnn_round_trip(tmp_path: Path) -> None:
    model = build_model("cnn", rng=3)
    assert model.num_parameters() == 16 * 25 + 16 + 32 * 16 * 25 + 32 + 1568 * 10 + 10
    loaded, meta = load_checkpoint(save_checkpoint(tmp_path / "c.npz", model, {"epoch": 1}))
    assert meta["architecture"]["name"] == "cnn"
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    from tinygrad_edu import Tensor, no_grad

    with no_grad():
        np.testing.assert_array_equal(model(Tensor(x)).data, loaded(Tensor(x)).data)


def test_file_is_a_plain_npz_without_pickles(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    with np.load(path, allow_pickle=False) as archive:
        assert ckpt.RECORD_KEY in archive.files
        assert archive[ckpt.RECORD_KEY].dtype == np.uint8
        record = json.loads(archive[ckpt.RECORD_KEY].tobytes().decode("utf-8"))
        assert {"param/layers.0.weight", "param/layers.2.bias"} <= set(archive.files)
        assert all(archive[k].dtype != object for k in archive.files)
    assert record["architecture"]["name"] == "mlp"
    assert record["meta"]["epoch"] == 3


def test_same_model_gives_identical_bytes(tmp_path: Path) -> None:
    a, b = _saved(tmp_path, "a.npz"), _saved(tmp_path, "b.npz")
    assert a.read_bytes() == b.read_bytes()


# --------------------------------------------------------------------------- atomic writes


def _no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_crash_during_write_keeps_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    path = _saved(tmp_path, "model.npz", seed=0)
    before = path.read_bytes()

    def half_then_crash(file, **arrays) -> None:
        file.write(b"PK\x03\x04 half an archive")
        raise error

    monkeypatch.setattr(ckpt.np, "savez", half_then_crash)
    with pytest.raises(type(error)):
        save_checkpoint(path, _small_model(seed=1), {"epoch": 4})
    assert path.read_bytes() == before
    assert _no_temp_files(tmp_path)
    monkeypatch.undo()
    assert load_checkpoint(path)[1]["epoch"] == 3


def test_crash_at_rename_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _saved(tmp_path)
    before = path.read_bytes()

    def fail(*args: object) -> None:
        raise OSError("rename failed")

    monkeypatch.setattr(ckpt.os, "replace", fail)
    with pytest.raises(OSError, match="rename failed"):
        save_checkpoint(path, _small_model(seed=1), {})
    assert path.read_bytes() == before
    assert _no_temp_files(tmp_path)


def test_save_creates_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "m.npz"
    save_checkpoint(path, _small_model(), {})
    assert path.is_file() and _no_temp_files(path.parent)


# --------------------------------------------------------------------------- bad files


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.npz"
    with pytest.raises(CheckpointError, match="nope.npz: no such file"):
        load_checkpoint(path)


def test_garbage_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"this is not a zip archive at all" * 10)
    with pytest.raises(CheckpointError, match=r"garbage\.npz.*corrupt or truncated"):
        load_checkpoint(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated_file_is_named(tmp_path: Path, fraction: float) -> None:
    path = _saved(tmp_path, "cut.npz")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match=r"cut\.npz"):
        load_checkpoint(path)


def test_flipped_bytes_are_detected(tmp_path: Path) -> None:
    path = _saved(tmp_path, "flipped.npz")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"flipped\.npz"):
        load_checkpoint(path)


def test_plain_npz_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "plain.npz"
    np.savez(path, w=np.zeros(3))
    with pytest.raises(CheckpointError, match=r"plain\.npz.*not a tinygrad_edu checkpoint"):
        load_checkpoint(path)


def test_pickled_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    record = np.frombuffer(
        json.dumps({"format": ckpt.FORMAT, "version": 1,
                    "architecture": {"name": "mlp", "config": SMALL}, "meta": {}}).encode(),
        dtype=np.uint8,
    )
    np.savez(path, **{ckpt.RECORD_KEY: record, "param/evil": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(CheckpointError, match=r"pickled\.npz"):
        load_checkpoint(path)


def test_unknown_architecture_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save_checkpoint(path, _small_model(), {}, architecture={"name": "transformer", "config": {}})
    with pytest.raises(CheckpointError, match=r"m\.npz.*unknown model 'transformer'"):
        load_checkpoint(path)


def test_mismatched_architecture_names_parameter_and_both_shapes(tmp_path: Path) -> None:
    path = tmp_path / "mismatch.npz"
    arch = {"name": "mlp", "config": {**default_config("mlp"), "sizes": [784, 64, 10]}}
    save_checkpoint(path, _small_model(), {}, architecture=arch)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "mismatch.npz" in message and "layers.0.weight" in message
    assert "(32, 784)" in message and "(64, 784)" in message


def test_state_dict_into_wrong_model_names_parameter_and_shapes() -> None:
    state = _small_model().state_dict()
    other = build_model("mlp", sizes=[784, 16, 10])
    with pytest.raises(ValueError, match=r"layers\.0\.weight.*\(32, 784\).*\(16, 784\)"):
        other.load_state_dict(state)


# --------------------------------------------------------------------------- models and meta


def test_model_without_architecture_needs_one(tmp_path: Path) -> None:
    from tinygrad_edu import nn

    with pytest.raises(ValueError, match="no recorded architecture"):
        save_checkpoint(tmp_path / "x.npz", nn.Linear(3, 2), {})
    assert not list(tmp_path.iterdir())


def test_meta_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(tmp_path / "x.npz", _small_model(), {"bad": object()})
    assert not list(tmp_path.iterdir())


def test_build_model_rejects_unknown_names_and_keys() -> None:
    with pytest.raises(ValueError, match="unknown model 'rnn'"):
        build_model("rnn")
    with pytest.raises(ValueError, match=r"unknown config keys \['depth'\]"):
        build_model("mlp", depth=3)


def test_default_configs_are_fresh_copies() -> None:
    config = default_config("mlp")
    config["sizes"].append(99)
    assert default_config("mlp")["sizes"] == [784, 256, 128, 64, 10]
    assert build_model("mlp").num_parameters() == 242762


def test_same_seed_same_initial_weights() -> None:
    a, b = build_model("cnn", rng=5).state_dict(), build_model("cnn", rng=5).state_dict()
    c = build_model("cnn", rng=6).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], c["0.weight"])


def test_cnn_variant_round_trip_keeps_batch_norm_buffers(tmp_path: Path) -> None:
    from tinygrad_edu import Tensor

    model = build_model("cnn", rng=0, batch_norm=True, hidden=32, dropout=0.25,
                        activation="tanh")
    model(Tensor(np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32)))
    state = model.state_dict()
    buffers = [k for k in state if k not in dict(model.named_parameters())]
    assert buffers  # the running statistics are saved too
    loaded, meta = load_checkpoint(save_checkpoint(tmp_path / "v.npz", model, {}))
    assert meta["architecture"]["config"]["batch_norm"] is True
    restored = loaded.state_dict()
    assert all(np.array_equal(state[k], restored[k]) for k in state)
