"""The ``tinygrad-edu`` command (also ``python -m tinygrad_edu``).

One module per command group, each adding its subcommands through
``register_cli(subparsers)``: a parser per subcommand whose ``func`` takes the parsed
arguments and returns the exit code.

* :mod:`.train` -- ``train`` and ``eval``;
* :mod:`.data` -- ``data``;
* :mod:`.graph` -- ``explain`` and ``graph``;
* :mod:`.lesson` -- ``lesson`` (list the lessons, run one);
* :mod:`.common` -- what they share: the one-line error, the number parsers, the output
  path checks.

Whatever goes wrong ends in one line on stderr and a non-zero exit: 1 for a failure while
working, 2 for bad arguments, 130 for Ctrl-C and 143 for SIGTERM (files being written are
left complete or untouched: their temporary files are removed on the way out).
``--debug`` shows the traceback of an unexpected error instead.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .. import __version__
from . import data, graph, lesson, train

__all__ = ["build_parser", "main"]

#: The command groups, in the order ``--help`` lists their subcommands.
COMMAND_MODULES = (train, data, graph, lesson)


def build_parser() -> argparse.ArgumentParser:
    """The ``tinygrad-edu`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tinygrad-edu",
        description="Autograd you can read: train on MNIST, and watch backprop step by step.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an unexpected error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register_cli(subparsers)
    for sub in subparsers.choices.values():  # also accepted after the command
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show the full traceback of an unexpected error")
    return parser


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM, so ``finally`` blocks (temporary files) run."""


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While the command runs, SIGTERM raises :class:`Terminated` instead of killing."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave the signal alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextmanager
def _numeric_warnings_as_notes(command: str) -> Iterator[None]:
    """While the command runs, numpy's RuntimeWarnings (division by zero, overflow: the IEEE
    inf and nan the engines give, as the tables show) are one line each on stderr, said
    once, instead of numpy's two lines with a file path and a line of our source."""
    said: set[str] = set()
    original = warnings.showwarning

    def note(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, RuntimeWarning):
            return original(message, category, filename, lineno, file, line)
        if str(message) not in said:
            said.add(str(message))
            print(f"{command}: note: numpy: {message} (the result is an IEEE inf or nan)",
                  file=sys.stderr)
        return None

    warnings.showwarning = note
    try:
        yield
    finally:
        warnings.showwarning = original


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tinygrad-edu`` with ``argv`` (default: the process's arguments); return the exit
    code: 2 with the help on stderr when no command is given, 1 with one line for any error
    (the traceback with ``--debug``; numpy's RuntimeWarnings as one-line notes), 130 on Ctrl-C, 143 on SIGTERM; 0, silently, when the
    reader of a pipe closed it, as ``| head`` does."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    command = f"tinygrad-edu {args.command}"
    try:
        with _sigterm_raises(), _numeric_warnings_as_notes(command):
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
            return code
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{command}: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:  # `tinygrad-edu graph neuron | head`: the reader has enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush
        return 0
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a traceback unless asked
        if args.debug:
            traceback.print_exc()
        else:
            message = " ".join(str(exc).split()) or "(no message)"
            print(f"{command}: error: {type(exc).__name__}: {message} "
                  "(run with --debug for the traceback)", file=sys.stderr)
        return 1
