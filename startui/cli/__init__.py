"""``python -m startui …`` (and the ``startui`` command): a thin shell over the library.

One module per command group — :mod:`~startui.cli.run` (run, serve), :mod:`~startui.cli.store`
(import, stats), :mod:`~startui.cli.rft` (generate, score, export, report),
:mod:`~startui.cli.review` (review, users), :mod:`~startui.cli.doctor` — and
:mod:`~startui.cli.common` for what they share. The top layer: it may import every stage.
"""

from __future__ import annotations

import argparse
import sys

from startui.cli import doctor as cli_doctor
from startui.cli import review as cli_review
from startui.cli import rft as cli_rft
from startui.cli import run as cli_run
from startui.cli import store as cli_store
from startui.infer.backends import BackendError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="startui",
                                     description="START Studio: Hint-infer with a real kernel")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (cli_run, cli_store, cli_rft, cli_review, cli_doctor):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, BackendError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
