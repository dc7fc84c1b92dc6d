"""The ``tinygrad-edu`` command (also ``python -m tinygrad_edu``).

Each feature module contributes its subcommands through a ``register_cli(subparsers)``
function that adds a parser and sets ``func`` (taking the parsed arguments, returning the
exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__

#: Modules that add subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "tinygrad_edu.train",  # train, eval
    "tinygrad_edu.datasets",  # data
    "tinygrad_edu.viz.cli",  # explain, graph
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-edu",
        description="Autograd you can read: train on MNIST, and watch backprop step by step.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register_cli(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
