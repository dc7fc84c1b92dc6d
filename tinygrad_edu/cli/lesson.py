"""``tinygrad-edu lesson``: list the lessons, or run one.

``tinygrad-edu lesson`` prints each lesson's name and one line.
``tinygrad-edu lesson NAME [--fast] [--out DIR] [--data DIR] [--seed N]`` runs it: the
table on stdout, the PNG figures into ``DIR`` (default ``lessons-out``), their paths
printed.  Exit codes: 0 done, 1 on an error (one line: unknown lesson, data not found,
a figure that could not be written), 2 bad arguments.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..datasets import DatasetError
from ..lessons import LESSONS, get
from .common import fail, one_line

__all__ = ["register_cli"]


def _lesson_command(args: argparse.Namespace) -> int:
    """List the lessons (no name) or run one; return the exit code."""
    if args.name is None:
        width = max(len(name) for name in LESSONS)
        for lesson in LESSONS.values():
            print(f"{lesson.name:<{width}}  {lesson.description}")
        return 0
    try:
        lesson = get(args.name)
    except KeyError as exc:
        return fail(one_line(exc.args[0]), "lesson")
    try:
        result = lesson.run(fast=args.fast, out=args.out, data=args.data, seed=args.seed)
    except (DatasetError, OSError) as exc:
        return fail(one_line(exc), "lesson")
    print(result)
    return 0


def register_cli(subparsers: Any) -> None:
    """Add the ``lesson`` subcommand to an argparse ``subparsers`` object."""
    parser = subparsers.add_parser(
        "lesson",
        help="list the lessons, or run one (table + PNG figures)",
        description="Each lesson runs one claim of the activation and backprop texts as an "
                    "experiment: it prints a table and writes PNG figures. Without NAME, "
                    "list the lessons.",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="the lesson to run")
    parser.add_argument("--fast", action="store_true",
                        help="small subsets: seconds instead of minutes")
    parser.add_argument("--out", metavar="DIR", default="lessons-out",
                        help="directory for the figures (default: lessons-out)")
    parser.add_argument("--data", metavar="DIR", default=None,
                        help="MNIST directory (default: $TINYGRAD_EDU_DATA, then the cache)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.set_defaults(func=_lesson_command)
