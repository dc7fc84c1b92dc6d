"""The ``tinygrad-edu`` command (also ``python -m tinygrad_edu``).

One module per command group, each adding its subcommands through
``register_cli(subparsers)``: a parser per subcommand whose ``func`` takes the parsed
arguments and returns the exit code.

* :mod:`.train` -- ``train`` and ``eval``;
* :mod:`.data` -- ``data``;
* :mod:`.graph` -- ``explain`` and ``graph``;
* :mod:`.common` -- what they share: the one-line error, the positive-number parsers.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from . import data, graph, train

__all__ = ["build_parser", "main"]

#: The command groups, in the order ``--help`` lists their subcommands.
COMMAND_MODULES = (train, data, graph)


def build_parser() -> argparse.ArgumentParser:
    """The ``tinygrad-edu`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tinygrad-edu",
        description="Autograd you can read: train on MNIST, and watch backprop step by step.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register_cli(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tinygrad-edu`` with ``argv`` (default: the process's arguments); return the exit
    code (2 with the help on stderr when no command is given, 130 on Ctrl-C; 0, silently,
    when the reader of a pipe closed it, as ``| head`` does)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tinygrad-edu graph neuron | head`: the reader has enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush
        return 0
