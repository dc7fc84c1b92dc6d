"""The IDX file format, MNIST's four files and the SHA-256 digests they are held to.

An IDX file is a 4-byte magic number, the dimensions, then the elements, all big-endian::

    magic = 0x00 0x00 TT DD      TT: element type code, DD: number of dimensions
    dims  = DD unsigned 32-bit integers d_1 ... d_DD
    data  = d_1 * ... * d_DD elements of the type TT, in C order

so a valid file is exactly ``4 + 4 * DD + prod(d_i) * itemsize`` bytes long.  MNIST's
labels are ``0x00000801`` (uint8, 1-D), its images ``0x00000803`` (uint8, 3-D).

This is the bottom of :mod:`tinygrad_edu.datasets`: it defines :class:`DatasetError`, the
canonical file names (:data:`MNIST_FILES`) and the digest table (:data:`MNIST_SHA256`) that
every file found, downloaded or rebuilt is checked against.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write_bytes

__all__ = ["MNIST_FILES", "MNIST_SHA256", "DatasetError", "read_idx", "write_idx"]

#: Logical name -> canonical (decompressed) file name.
MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: Decompressed file name -> SHA-256 of the canonical file.
MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

_GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian numpy dtype of the stored elements.
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# (kind, itemsize) of an array -> IDX type code, for the writer.
_IDX_CODES: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in _IDX_DTYPES.items()
}


class DatasetError(Exception):
    """Any failure to find, read, download or verify a data file."""


# --------------------------------------------------------------------------- checksums


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def require_digest(actual: str, expected: str, source: str, name: str = "") -> None:
    """Raise :class:`DatasetError` naming ``source`` (and ``name``) unless the digests agree."""
    if actual != expected:
        what = f" for {name}" if name else ""
        raise DatasetError(
            f"{source}: SHA-256 mismatch{what}: expected {expected}, got {actual}"
        )


def check_mnist_file(name: str, data: bytes, source: str) -> None:
    """Raise :class:`DatasetError` unless ``data`` has the digest :data:`MNIST_SHA256` pins
    for ``name``."""
    require_digest(sha256_hex(data), MNIST_SHA256[name], source, name)


# --------------------------------------------------------------------------- IDX codec


def parse_idx(data: bytes, source: str) -> np.ndarray:
    """Decode an uncompressed IDX blob; ``source`` names the file in errors."""
    if len(data) < 4:
        raise DatasetError(f"{source}: truncated header: {len(data)} bytes, expected at least 4")
    magic = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if data[:2] != b"\0\0" or code not in _IDX_DTYPES:
        raise DatasetError(
            f"{source}: bad magic number 0x{magic:08x} (expected 0x00000801 for labels, "
            "0x00000803 for images, or another 0x0000TTDD with a known IDX type code)"
        )
    if ndim == 0:
        raise DatasetError(f"{source}: bad header: magic 0x{magic:08x} declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(
            f"{source}: truncated header: {ndim} dimensions need {header} bytes, "
            f"file has {len(data)}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_DTYPES[code]
    count = math.prod(dims)
    expected = header + count * dtype.itemsize
    if len(data) != expected:
        problem = "truncated data" if len(data) < expected else "trailing bytes"
        raise DatasetError(
            f"{source}: {problem}: shape {dims} of {dtype.name} needs {expected} bytes, "
            f"file has {len(data)}"
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=header)
    return flat.astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode ``array`` as an uncompressed IDX blob (big-endian elements)."""
    arr = np.asarray(array)
    code = _IDX_CODES.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}")
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got {arr.ndim}")
    if any(dim > 0xFFFFFFFF for dim in arr.shape):
        raise ValueError(f"IDX dimensions must fit in 32 bits, got shape {arr.shape}")
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = arr.astype(_IDX_DTYPES[code], copy=False).tobytes(order="C")
    return header + body


#: Largest decompressed IDX file read (MNIST's largest is 47,040,016 bytes).
MAX_IDX_BYTES = 64 * 1024 * 1024


def _declared_size(head: bytes, source: str) -> int:
    """The exact file size an IDX header promises (magic and dimensions checked first)."""
    if len(head) < 4:
        raise DatasetError(f"{source}: truncated header: {len(head)} bytes, expected at least 4")
    if head[:2] != b"\0\0" or head[2] not in _IDX_DTYPES or head[3] == 0:
        parse_idx(head, source)  # raises the precise header error
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        parse_idx(head, source)
    dims = struct.unpack(f">{ndim}I", head[4:4 + 4 * ndim])
    return 4 + 4 * ndim + math.prod(dims) * _IDX_DTYPES[head[2]].itemsize


def _read_at_most(handle: Any, head: bytes, size: int) -> bytearray:
    """``head`` followed by at most ``size - len(head)`` more bytes of ``handle``, read into
    one preallocated buffer (no second copy of a large file)."""
    buffer = bytearray(size)
    buffer[:len(head)] = head
    filled = len(head)
    while filled < size:
        chunk = handle.read(min(1 << 20, size - filled))
        if not chunk:
            break
        buffer[filled:filled + len(chunk)] = chunk
        filled += len(chunk)
    del buffer[filled:]
    return buffer


def read_decompressed(path: Path, max_bytes: int = MAX_IDX_BYTES) -> bytes:
    """Read the IDX file ``path`` (gunzipping it when it starts with the gzip magic), size
    first: the header is read and checked, and the size it declares must be at most
    ``max_bytes`` and, for a raw file, equal to the file's size, before the rest is read;
    a gzip stream is decompressed only up to that size (plus one byte, to see trailing
    data), so neither a sparse file nor a gzip bomb is ever read whole.
    """
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            handle = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            head = handle.read(4)
            if len(head) == 4 and head[:2] == b"\0\0" and head[3]:
                head += handle.read(4 * head[3])
            expected = _declared_size(head, str(path))
            if not gzipped:
                actual = os.fstat(raw.fileno()).st_size
                if actual != expected:
                    problem = "truncated data" if actual < expected else "trailing bytes"
                    raise DatasetError(f"{path}: {problem}: the header declares {expected:,} "
                                       f"bytes, the file has {actual:,}")
            if expected > max_bytes:
                raise DatasetError(f"{path}: header declares {expected:,} bytes, more than the "
                                   f"{max_bytes:,} an IDX file may have here")
            data = _read_at_most(handle, head, expected + 1)
            if len(data) > expected:  # say how long the stream is, reading at most the cap
                total = len(data)
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    total += len(chunk)
                    if total > max_bytes:
                        break
                dims = struct.unpack(f">{head[3]}I", head[4:])
                shown = f"{total:,}" if total <= max_bytes else f"more than {max_bytes:,}"
                raise DatasetError(f"{path}: trailing bytes: shape {dims} of "
                                   f"{_IDX_DTYPES[head[2]].name} needs {expected} bytes, "
                                   f"file has {shown}")
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc
    return data


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed, into a native-endian numpy array.

    The header is validated: the magic number (``0x00000801`` for MNIST labels,
    ``0x00000803`` for MNIST images; any IDX type code for uint8, int8, int16,
    int32, float32 or float64 is accepted), the number of dimensions, and the
    exact byte size implied by the dimensions.  Any problem raises
    :class:`DatasetError` naming the file.
    """
    path = Path(path)
    return parse_idx(read_decompressed(path), str(path))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, atomically (temp file + ``os.replace``).

    MNIST data is uint8; int8, int16, int32, float32 and float64 arrays are
    stored with their IDX type codes too.  The file is raw unless ``path`` ends
    in ``.gz``, in which case it is gzip-compressed.  Raises ``ValueError`` for
    an array IDX cannot represent.
    """
    path = Path(path)
    data = encode_idx(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)
