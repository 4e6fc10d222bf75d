"""Command-line entry point: ``python -m core <command> ...``.

Each sub-command lives in ``core/commands/<name>.py`` with ``add_parser(subparsers)``
and ``run(args) -> int``. User errors (:class:`core.exceptions.CoreError`) print a
message and exit 2; they never show a traceback. Numeric options are checked first, for every command
(:func:`core.commands.common.check_arguments`: seeds, hours, folds, resamples, counts).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from core.commands.common import check_arguments
from core.exceptions import CoreError

__all__ = ["main"]

#: sub-command modules under core.commands, in help order.
COMMANDS = ("validate", "demo", "train", "predict", "explain", "timeorder", "users", "report", "whatif", "compare", "evaluate")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``only`` (its module alone is imported: ``validate`` then
    starts without torch and scikit-learn, about 3 s and 350 MB less)."""
    parser = argparse.ArgumentParser(prog="python -m core",
                                     description="Clinical time-series analytics: validate data, train and "
                                                 "compare models, explain them, measure time order.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (only,) if only in COMMANDS else COMMANDS:
        module = importlib.import_module(f"core.commands.{name}")
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    try:
        check_arguments(args)          # every numeric option, before any work (core.commands.common)
        return int(args._run(args) or 0)
    except CoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"error: file not found: {err.filename}. Check the path and try again.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:      # Ctrl-C: the same as cancelling a job in the app
        print("\ncancelled (Ctrl-C): nothing half-written is left; a run folder is written only once its training "
              "has finished.", file=sys.stderr)
        return 130
