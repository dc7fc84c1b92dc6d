"""Atomic file writes: a reader sees the old file, or the complete new one, never a part.

Datasets in the cache and training checkpoints are written through :func:`atomic_writer`
(or :func:`atomic_write_bytes` for bytes already in memory): the bytes go to a temporary
file beside the target, are flushed to disk, and only then renamed over the target with
``os.replace`` (atomic on POSIX and Windows).  Any failure, including ``KeyboardInterrupt``,
removes the temporary file and leaves the target untouched.

A process killed outright (``kill -9``, a power cut) cannot clean up: its temporary file
``.NAME.PID-RANDOM.tmp`` stays.  The next write to the same target removes such leftovers of
its own pattern whose process is gone (:func:`remove_stale_temporaries`); other files are
never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write_bytes", "atomic_writer", "remove_quietly", "remove_stale_temporaries"]

#: A temporary file of another process is left alone unless its process is gone (POSIX), or
#: it is older than this many seconds (Windows, and the PID-less names of older versions).
STALE_AFTER_SECONDS = 3600.0


def remove_quietly(path: str | os.PathLike[str]) -> None:
    """Delete the file at ``path`` if it exists; any ``OSError`` is ignored."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def _process_gone(pid: int) -> bool:
    """True when no process ``pid`` exists (never guessed on Windows: False there)."""
    if os.name == "nt" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files that earlier, killed writes of ``path`` left beside it.

    Only names of :func:`atomic_writer`'s own pattern for this target are considered
    (``.NAME.PID-HEX.tmp``, and ``.NAME.HEX.tmp`` of older versions), only regular files
    (never through a link), and only when their process is gone or they are older than
    :data:`STALE_AFTER_SECONDS`.  Returns the files removed.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:(\d+)-)?[0-9a-f]{{12}}\.tmp")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        pid = int(match.group(1)) if match.group(1) else 0
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_SECONDS
        except OSError:
            continue
        if (pid and pid != os.getpid() and _process_gone(pid)) or old:
            remove_quietly(entry.path)
            removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary handle whose contents replace ``path`` atomically when the block ends.

    The new file gets the usual permissions (0o666 less the umask), like ``open(path, "wb")``.
    Stale temporary files of earlier killed writes to ``path`` are removed first.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")
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
