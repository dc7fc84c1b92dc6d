"""What every ``tinygrad-edu`` command shares: the one-line error and the number parsers."""

from __future__ import annotations

import argparse
import math
import sys

__all__ = ["fail", "one_line", "positive_float", "positive_int"]


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` with every run of whitespace (newlines too) made one space."""
    return " ".join(str(exc).split())


def fail(message: str, command: str | None = None, code: int = 1) -> int:
    """Print ``[tinygrad-edu COMMAND: ]error: MESSAGE`` on stderr; return the exit ``code``."""
    prefix = f"tinygrad-edu {command}: " if command else ""
    print(f"{prefix}error: {message}", file=sys.stderr)
    return code


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value
