"""``tinygrad-edu data``: locate (and if needed download) MNIST, verify it, say where it is.

``tinygrad-edu data [--data DIR] [--no-download]`` prints the directory, then each file with
its SHA-256 and ``ok``.  Exit codes: 0 verified, 1 on a
:class:`~tinygrad_edu.datasets.DatasetError` (one line), 2 bad arguments.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..datasets import DATA_ENV_VAR, DatasetError
from ..datasets.idx import sha256_hex
from ..datasets.mnist import locate
from .common import fail, one_line

__all__ = ["register_cli"]


def _data_command(args: argparse.Namespace) -> int:
    """Run ``tinygrad-edu data``: fetch, verify and report; return the exit code."""
    try:
        located = locate(args.data, not args.no_download, verbose=True)
    except DatasetError as exc:
        return fail(one_line(exc), "data")
    print(f"MNIST directory: {located.directory}")
    for name, file in located.files.items():
        print(f"{name}: {file} sha256 {sha256_hex(located.data[name])} ok")
    return 0


def register_cli(subparsers: Any) -> None:
    """Add the ``data`` subcommand to an argparse ``subparsers`` object.

    The handler is stored as ``func`` (it takes the parsed arguments and returns the exit
    code).
    """
    parser = subparsers.add_parser(
        "data",
        help="download and verify the MNIST data set",
        description="Locate (and if needed download) MNIST and verify its SHA-256 hashes.",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help=f"directory to look in first (then ${DATA_ENV_VAR}, then the user cache)",
    )
    parser.add_argument(
        "--no-download",
        action="store_true",
        help="fail instead of downloading missing files into the cache",
    )
    parser.set_defaults(func=_data_command)
