"""``python -m core validate EVENTS [--labels LABELS] [--target COL] [overrides]``.

Prints the validation report; exit 0 when the data can train a model, 2 when not.
"""
from __future__ import annotations

import argparse
import json

from core.commands.common import add_data_arguments, data_config_from_args
from core.data.ingest import validate_data

__all__ = ["add_parser", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("validate", help="check an events file (+ labels) and print the report",
                       description="Read EVENTS (long, wide or PhysioNet 2012 layout; CSV, CSV.gz, Parquet, "
                                   "folder or zip), check it and print the report. Exit 0 when it can train a "
                                   "model, 2 when not.")
    p.add_argument("events", help="events file, folder or zip")
    add_data_arguments(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    try:
        config = data_config_from_args(args)
    except ValueError as err:
        print(f"error: {err}")
        return 2
    _, report = validate_data(args.events, args.labels, config=config)
    print(json.dumps(report.to_dict(), indent=2, default=str) if args.json else report.to_text())
    if report.ok and config.target is None and "labelled patients" not in report.summary:
        print("\nNo target given: the data can be explored but not trained on (use --labels/--target).")
        return 2
    print("\nResult: " + ("OK, the data can be used for training." if report.ok else
                          f"NOT usable for training: {len(report.errors)} error(s) above."))
    return 0 if report.ok else 2
