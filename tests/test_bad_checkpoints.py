"""Hostile checkpoints: each is refused with an error naming the file and the field, before
anything large is allocated and before any weight is read; the CLI says so in one line."""

from __future__ import annotations

import io
import json
import tracemalloc
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_edu import checkpoint as ckpt
from tinygrad_edu.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinygrad_edu.cli import main
from tinygrad_edu.models import build_model

SMALL = {"sizes": [784, 16, 10]}


def _record(architecture: Any = None, meta: Any = None, **extra: Any) -> dict[str, Any]:
    record = {"format": ckpt.FORMAT, "version": ckpt.VERSION,
              "architecture": architecture or {"name": "mlp", "config": dict(SMALL)},
              "meta": {} if meta is None else meta}
    record.update(extra)
    return record


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=True)
    return out.getvalue()


def _write(path: Path, members: dict[str, bytes],
           compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, blob in members.items():
            archive.writestr(f"{name}.npy", blob)
    return path


def _good_members(record: dict[str, Any] | None = None, text: str | None = None) -> dict:
    model = build_model("mlp", rng=0, **SMALL)
    members = {f"param/{k}": _npy(v) for k, v in model.state_dict().items()}
    text = json.dumps(record or _record()) if text is None else text
    members[ckpt.RECORD_KEY] = _npy(np.frombuffer(text.encode(), dtype=np.uint8))
    return members


def _refused(path: Path, *fragments: str) -> str:
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    assert peak < 16 << 20  # nothing large allocated
    return message


def _huge_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    """A .npy header declaring ``shape`` followed by 16 bytes of data."""
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + bytes(16)


def test_header_declaring_3_6_tib_is_refused_before_allocating(tmp_path: Path) -> None:
    members = _good_members()
    members["param/layers.0.weight"] = _huge_header((1_000_000, 1_000_000))
    _refused(_write(tmp_path / "huge.npz", members), "param/layers.0.weight",
             "(1000000, 1000000)", "stores 16 bytes")


@pytest.mark.parametrize(("config", "field"), [
    ({"sizes": [784, 10**9, 10]}, "architecture.config.sizes"),
    ({"sizes": [784, 0, 10]}, "architecture.config.sizes"),
    ({"sizes": [784, -1, 10]}, "architecture.config.sizes"),
    ({"sizes": "784,10"}, "architecture.config.sizes"),
    ({"sizes": [784, 16.5, 10]}, "architecture.config.sizes"),
    ({"sizes": [784, True, 10]}, "architecture.config.sizes"),
    ({"sizes": []}, "architecture.config.sizes"),
    ({"dropout": "lots"}, "architecture.config.dropout"),
    ({"activation": 3}, "architecture.config.activation"),
    ({"unknown": 1}, "architecture.config.unknown"),
])
def test_bad_mlp_config_is_refused_by_field(tmp_path: Path, config: dict, field: str) -> None:
    record = _record({"name": "mlp", "config": {**SMALL, **config}})
    _refused(_write(tmp_path / "c.npz", _good_members(record)), field)


@pytest.mark.parametrize(("config", "field"), [
    ({"channels": [10**9, 32]}, "architecture.config.channels"),
    ({"kernel_size": 10**9}, "architecture.config.kernel_size"),
    ({"hidden": 10**9}, "architecture.config.hidden"),
    ({"batch_norm": "yes"}, "architecture.config.batch_norm"),
])
def test_bad_cnn_config_is_refused_by_field(tmp_path: Path, config: dict, field: str) -> None:
    record = _record({"name": "cnn", "config": config})
    _refused(_write(tmp_path / "c.npz", _good_members(record)), field)


def test_config_larger_than_the_weights_the_file_holds_is_refused(tmp_path: Path) -> None:
    record = _record({"name": "mlp", "config": {"sizes": [784, 60000, 60000, 10]}})
    _refused(_write(tmp_path / "c.npz", _good_members(record)),
             "architecture.config needs about", "weights but the file holds")


@pytest.mark.parametrize(("record", "fragment"), [
    (_record(meta=[1, 2]), "meta must be an object"),
    (_record(meta="notes"), "meta must be an object"),
    (_record(architecture={"name": "mlp", "config": [1]}), "architecture.config must be"),
    (_record(architecture={"name": 7}), "no architecture recorded"),
    (_record(architecture={"name": "x" * 10_000}), "unknown model"),
    ({**_record(), "version": "1"}, "format version '1'"),
    ({**_record(), "version": True}, "format version True"),
    ([1, 2, 3], "wrong format"),
])
def test_wrong_types_in_the_record_are_refused(tmp_path: Path, record: Any,
                                               fragment: str) -> None:
    members = _good_members(text=json.dumps(record))
    _refused(_write(tmp_path / "r.npz", members), fragment)


def test_100000_nested_brackets_in_the_record(tmp_path: Path) -> None:
    members = _good_members(text="[" * 100_000 + "]" * 100_000)
    _refused(_write(tmp_path / "nest.npz", members), "__checkpoint__", "nested too deeply")


def test_oversized_record_is_refused(tmp_path: Path) -> None:
    members = _good_members(text=json.dumps(_record(meta={"pad": "x" * (2 << 20)})))
    _refused(_write(tmp_path / "big.npz", members), "__checkpoint__", "at most")


def test_plain_npy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.npz"
    np.save(path.with_suffix(".npy"), np.zeros(3))
    path.with_suffix(".npy").rename(path)
    _refused(path, "a plain .npy array")


@pytest.mark.parametrize(("value", "fragment"), [
    (np.zeros((16, 784), np.complex128), "dtype complex128"),
    (np.array([["a"] * 784] * 16), "dtype <U1"),
    (np.array([object()] * 3, dtype=object), "dtype object"),
])
def test_weights_of_the_wrong_kind_are_refused(tmp_path: Path, value: np.ndarray,
                                              fragment: str) -> None:
    members = _good_members()
    members["param/layers.0.weight"] = _npy(value)
    _refused(_write(tmp_path / "w.npz", members), "param/layers.0.weight", fragment)


def test_integer_weights_where_floats_belong_are_refused(tmp_path: Path) -> None:
    members = _good_members()
    members["param/layers.2.bias"] = _npy(np.zeros(10, np.int64))
    _refused(_write(tmp_path / "w.npz", members), "param/layers.2.bias", "int64")


def test_a_bad_last_entry_is_found_before_any_weight_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = _good_members()
    members["param/layers.2.bias"] = _npy(np.zeros(11, np.float32))  # the last entry
    path = _write(tmp_path / "last.npz", members)
    read: list[str] = []
    real = ckpt._read_member
    monkeypatch.setattr(ckpt, "_read_member",
                        lambda archive, info: read.append(info.filename) or real(archive, info))
    _refused(path, "param/layers.2.bias has shape (11,)", "(10,)")
    assert all(not name.startswith("param/") for name in read)


def test_member_that_is_not_npy_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.npz", _good_members())
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("evil.pkl", b"cos\nsystem\n")
    _refused(path, "unexpected member 'evil.pkl'")


def test_truncated_member_is_refused(tmp_path: Path) -> None:
    members = _good_members()
    members["param/layers.0.weight"] = members["param/layers.0.weight"][:-8]
    _refused(_write(tmp_path / "t.npz", members), "param/layers.0.weight", "stores")


@pytest.mark.parametrize(("field", "value", "fragment"), [
    ("method", 99, "uses zip compression method 99"),
    ("method", zipfile.ZIP_LZMA, "uses zip compression method 14"),
    ("flags", 0x0001, "zip flags 0x0001: encrypted"),
    ("flags", 0x0020, "zip flags 0x0020"),
    ("flags", 0x0040, "zip flags 0x0040"),
    ("flags", 0x2000, "zip flags 0x2000"),
])
def test_a_damaged_zip_header_field_is_refused(tmp_path: Path, field: str, value: int,
                                               fragment: str) -> None:
    """The first member's compression method or flags, in its local and central headers."""
    path = _write(tmp_path / "m.npz", _good_members())
    blob = bytearray(path.read_bytes())
    for signature, offsets in ((b"PK\x03\x04", {"flags": 6, "method": 8}),
                               (b"PK\x01\x02", {"flags": 8, "method": 10})):
        at = blob.find(signature) + offsets[field]
        blob[at:at + 2] = value.to_bytes(2, "little")
    path.write_bytes(bytes(blob))
    _refused(path, fragment)


def _member_starts(blob: bytes) -> list[int]:
    """Where each member's data (its .npy header first, deflated or not) begins in ``blob``:
    after its 30-byte local zip header, its name and its extra field."""
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        offsets = [info.header_offset for info in archive.infolist()]
    return [at + 30 + int.from_bytes(blob[at + 26:at + 28], "little")
            + int.from_bytes(blob[at + 28:at + 30], "little") for at in offsets]


def test_a_deflated_checkpoint_loads(tmp_path: Path) -> None:
    """savez_compressed's members (deflated) are read like savez's (stored)."""
    model, _ = load_checkpoint(_write(tmp_path / "z.npz", _good_members(), zipfile.ZIP_DEFLATED))
    reference = build_model("mlp", rng=0, **SMALL).state_dict()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, reference[key])


@pytest.mark.parametrize("member", ["param/layers.0.weight", ckpt.RECORD_KEY])
def test_a_damaged_deflate_stream_is_refused(tmp_path: Path, member: str) -> None:
    """A deflated member whose stream cannot be decompressed (zlib's own error) is damage:
    its first byte made a block of the reserved type 3."""
    members = _good_members()
    path = _write(tmp_path / "z.npz", members, zipfile.ZIP_DEFLATED)
    blob = bytearray(path.read_bytes())
    blob[_member_starts(bytes(blob))[list(members).index(member)]] = 0b111  # final, type 3
    path.write_bytes(bytes(blob))
    _refused(path, member, "invalid block type")


def _raw_npy(header: bytes, data_bytes: int = 16 * 784 * 4) -> bytes:
    """A version-1.0 .npy member with ``header`` written verbatim (numpy would refuse to)."""
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(data_bytes)


@pytest.mark.parametrize(("header", "why"), [
    # numpy's parser lets these escape as tokenize.TokenError (found by the fuzz test below)
    (b"{'descr': '<f4', 'fortran_order': False, 'shape': (16, 784\x00, }", "TokenError"),
    (b"{'descr': '<f4', 'fortran_order': False, 'shape': (16, 784, }", "TokenError"),
    (b"__import__('os').system('echo owned')", "malformed node"),
    (b"[1, 2, 3]", "not a dictionary"),
    (b"{'descr': 5, 'fortran_order': False, 'shape': (16, 784)}", "dtype descriptor"),
    (b"{'descr': '<f4', 'fortran_order': False, 'shape': (16.5, 784)}", "shape is not valid"),
    (b"(" * 3000 + b")" * 3000, "Cannot parse header"),
])
def test_a_damaged_npy_header_is_refused_by_member(tmp_path: Path, header: bytes,
                                                   why: str) -> None:
    members = _good_members()
    members["param/layers.0.weight"] = _raw_npy(header)
    _refused(_write(tmp_path / "h.npz", members),
             "param/layers.0.weight has an unreadable .npy header", why)


def test_a_python_2_style_header_is_refused_not_warned_about(tmp_path: Path) -> None:
    """numpy parses ``16L`` only after a repair, with a UserWarning telling the user to save
    the file again: in a checkpoint it is damage (a random hit can make one)."""
    members = _good_members()
    members["param/layers.0.weight"] = _raw_npy(
        b"{'descr': '<f4', 'fortran_order': False, 'shape': (16L, 784)}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _refused(_write(tmp_path / "py2.npz", members), "param/layers.0.weight",
                 "damaged .npy header")


def test_the_raw_header_builder_makes_a_loadable_member(tmp_path: Path) -> None:
    """The well-formed twin of the headers above loads (the refusals are for the damage)."""
    members = _good_members()
    weight = np.frombuffer(members["param/layers.0.weight"][-16 * 784 * 4:], np.float32)
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (16, 784)}"
    members["param/layers.0.weight"] = _raw_npy(header, 0) + weight.tobytes()
    model, _ = load_checkpoint(_write(tmp_path / "ok.npz", members))
    np.testing.assert_array_equal(model.state_dict()["layers.0.weight"].ravel(), weight)


def test_a_good_handmade_checkpoint_still_loads(tmp_path: Path) -> None:
    """The builders above make loadable files when nothing is wrong (the refusals are real)."""
    model, meta = load_checkpoint(_write(tmp_path / "ok.npz", _good_members()))
    reference = build_model("mlp", rng=0, **SMALL).state_dict()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, reference[key])
    assert meta["architecture"]["name"] == "mlp"


@pytest.mark.parametrize("kind", ["huge", "nested", "npy", "complex"])
def test_eval_of_a_crafted_checkpoint_is_one_line(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    members = _good_members()
    path = tmp_path / f"{kind}.npz"
    if kind == "huge":
        members["param/layers.0.weight"] = _huge_header((1 << 20, 1 << 20))
    elif kind == "nested":
        members = _good_members(text="[" * 100_000 + "]" * 100_000)
    elif kind == "complex":
        members["param/layers.0.weight"] = _npy(np.zeros((16, 784), np.complex64))
    if kind == "npy":
        np.save(tmp_path / "a.npy", np.zeros(3))
        (tmp_path / "a.npy").rename(path)
    else:
        _write(path, members)
    assert main(["eval", "--checkpoint", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tinygrad-edu eval: error: checkpoint ")
    assert str(path) in err[0] and "Traceback" not in err[0]


def test_saved_checkpoints_pass_every_check(tmp_path: Path) -> None:
    for name, config in (("mlp", SMALL), ("cnn", {"batch_norm": True, "hidden": 8})):
        model = build_model(name, rng=1, **config)
        path = save_checkpoint(tmp_path / f"{name}.npz", model, {"epoch": 1})
        loaded, _ = load_checkpoint(path)
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(loaded.state_dict()[key], value)


# --------------------------------------------------------------------------- damaged bytes


@settings(max_examples=100)
@given(data=st.data())
def test_a_checkpoint_damaged_anywhere_loads_or_is_refused_by_name(data: st.DataObject) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        compression = data.draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
        path = _write(Path(folder) / "d.npz", _good_members(), compression)
        blob = bytearray(path.read_bytes())
        # The member headers are a few hundred of the file's ~50,000 bytes, so half the hits
        # land within 128 bytes of the start of a member's data (its .npy header, deflated
        # or not), where the parsing is.
        anywhere = st.integers(0, len(blob) - 1)
        near_a_header = st.builds(lambda start, offset: min(start + offset, len(blob) - 1),
                                  st.sampled_from(_member_starts(bytes(blob))),
                                  st.integers(0, 127))
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.one_of(anywhere, near_a_header))
            blob[at] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(1, len(blob)))
        path.write_bytes(bytes(blob[:cut]))
        try:
            model, _ = load_checkpoint(path)
        except CheckpointError as exc:
            assert str(path) in str(exc)
        else:  # the damage missed everything that matters: the zip CRCs guard the weights
            reference = build_model("mlp", rng=0, **SMALL).state_dict()
            for key, value in model.state_dict().items():
                np.testing.assert_array_equal(value, reference[key])
