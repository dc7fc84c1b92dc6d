"""What every ``tinygrad-edu`` command shares: the one-line error, the number parsers, and the
checks of output paths made before any work starts."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "UsageError",
    "check_output_path",
    "fail",
    "finite_float",
    "non_negative_float",
    "non_negative_int",
    "one_line",
    "positive_float",
    "positive_int",
]

#: Longest number text the parsers accept (a 401-digit number is refused by name, not
#: turned into ``inf`` or an ``OverflowError``).
MAX_NUMBER_TEXT = 40


class UsageError(ValueError):
    """Bad command-line input (exit code 2)."""


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` with every run of whitespace (newlines too) made one space."""
    return " ".join(str(exc).split())


def fail(message: str, command: str | None = None, code: int = 1) -> int:
    """Print ``[tinygrad-edu COMMAND: ]error: MESSAGE`` on stderr; return the exit ``code``."""
    prefix = f"tinygrad-edu {command}: " if command else ""
    print(f"{prefix}error: {message}", file=sys.stderr)
    return code


def _shown(text: str) -> str:
    """``text`` for an error message, cut to a readable length."""
    return repr(text) if len(text) <= MAX_NUMBER_TEXT else f"{text[:12]!r}... ({len(text)} chars)"


def _number(text: str, kind: type, what: str, ok: Callable[[Any], bool] | None = None) -> Any:
    """``kind(text)`` for a short, finite number for which ``ok(value)`` holds (when given);
    else an ``ArgumentTypeError`` saying ``what`` was expected."""
    if len(text.strip()) > MAX_NUMBER_TEXT:
        raise argparse.ArgumentTypeError(f"must be {what}, got {_shown(text)} (too long)")
    try:
        value = kind(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"must be {what}, got {_shown(text)}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {_shown(text)} (not finite)")
    if ok is not None and not ok(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {_shown(text)}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(text, int, "a positive integer", lambda v: v >= 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _number(text, int, "a non-negative integer", lambda v: v >= 0)


def finite_float(text: str) -> float:
    """argparse type: any finite number (``nan``, ``inf`` and 401-digit numbers refused)."""
    return _number(text, float, "a finite number")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _number(text, float, "a positive number", lambda v: v > 0)


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _number(text, float, "a non-negative finite number", lambda v: v >= 0)


def check_output_path(path: str | os.PathLike[str], option: str,
                      create_parents: bool = False) -> Path:
    """Check, before any work, that a file can be written at ``path``; raise
    :class:`UsageError` naming ``option`` and the path otherwise.

    The target must not be a directory; its folder must exist (or, with ``create_parents``,
    its nearest existing ancestor must be a folder) and be writable.
    """
    target = Path(path)
    if str(path) == "" or target.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a folder, not a file")
    folder = target.parent
    if not create_parents and not folder.is_dir():
        raise UsageError(f"{option} {target}: the folder {folder} does not exist")
    while not folder.exists():  # create_parents: the first folder that exists must be one
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{option} {target}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {target}: the folder {folder} is not writable")
    return target
