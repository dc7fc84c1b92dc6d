"""Atomic file writes: a reader sees the old file, or the complete new one, never a part.

Datasets in the cache and training checkpoints are written through :func:`atomic_writer`
(or :func:`atomic_write_bytes` for bytes already in memory): the bytes go to a temporary
file beside the target, are flushed to disk, and only then renamed over the target with
``os.replace`` (atomic on POSIX and Windows).  Any failure, including ``KeyboardInterrupt``,
removes the temporary file and leaves the target untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write_bytes", "atomic_writer", "remove_quietly"]


def remove_quietly(path: str | os.PathLike[str]) -> None:
    """Delete the file at ``path`` if it exists; any ``OSError`` is ignored."""
    with contextlib.suppress(OSError):
        os.unlink(path)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary handle whose contents replace ``path`` atomically when the block ends.

    The new file gets the usual permissions (0o666 less the umask), like ``open(path, "wb")``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    done = False
    try:
        with os.fdopen(os.open(tmp, flags, 0o666), "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        done = True
    finally:
        if not done:
            remove_quietly(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace the file at ``path`` by ``data`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as handle:
        handle.write(data)
