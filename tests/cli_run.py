"""How the CLI tests run ``tinygrad-edu``: in-process, with its exit code and output."""

from __future__ import annotations

import pytest

from tinygrad_edu.cli import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``tinygrad-edu ARGV`` in this process: (exit code, stdout, stderr); argparse's
    ``SystemExit`` (usage errors, ``--help``) becomes its code."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err
