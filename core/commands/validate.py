"""``python -m core validate EVENTS [--labels LABELS] [--target COL] [overrides]``.

Prints the validation report; exit 0 when the data can train a model, 2 when not.
"""
from __future__ import annotations

import argparse
import json

from core.config import TASKS, DataConfig
from core.ingest import validate_data

__all__ = ["add_parser", "run", "add_data_arguments", "data_config_from_args"]


def add_data_arguments(p: argparse.ArgumentParser, *, labels: bool = True) -> None:
    """The events/labels mapping options shared by every command that reads data."""
    if labels:
        p.add_argument("--labels", help="labels file: patient id + target column (CSV/CSV.gz/Parquet)")
        p.add_argument("--target", help="outcome column (0/1), in the labels file or constant per patient in EVENTS; "
                       "with --task online: a 0/1 column of EVENTS per hour (e.g. SepsisLabel), or the onset-time "
                       "column of the labels file (hours since the first record, empty = never)")
    p.add_argument("--task", choices=list(TASKS), default="stay",
                   help="stay = one label per patient; online = a label for every patient-hour")
    p.add_argument("--horizon-hours", type=float, default=None, metavar="H",
                   help="online task: hours before onset that count as positive (needed with an onset column; "
                        "e.g. 6)")
    g = p.add_argument_group("column mapping (auto-detected when omitted)")
    g.add_argument("--patient-col", help="patient id column of EVENTS")
    g.add_argument("--time-col", help="time column of EVENTS")
    g.add_argument("--variable-col", help="variable-name column (long layout)")
    g.add_argument("--value-col", help="value column (long layout)")
    g.add_argument("--label-patient-col", help="patient id column of the labels file")
    g.add_argument("--layout", choices=["auto", "long", "wide"], default="auto")
    g.add_argument("--time-format", choices=["auto", "hours", "hhmm", "datetime"], default="auto",
                   help="hours = numbers, hhmm = HH:MM since admission, datetime = ISO date-times")
    g.add_argument("--sentinel", default="-1",
                   help="comma-separated codes meaning 'unknown' (default -1; 'none' to disable)")
    g.add_argument("--static", help="comma-separated variables to treat as static attributes (default: auto)")
    g.add_argument("--max-time-hours", type=float, default=DataConfig.max_time_hours,
                   help="times beyond this many hours are excluded as absurd")


def data_config_from_args(args: argparse.Namespace) -> DataConfig:
    sentinel = () if str(args.sentinel).lower() in ("none", "") else tuple(
        float(s) for s in str(args.sentinel).split(","))
    return DataConfig(patient_col=args.patient_col, time_col=args.time_col, variable_col=args.variable_col,
                      value_col=args.value_col, target=getattr(args, "target", None),
                      label_patient_col=args.label_patient_col, layout=args.layout, time_format=args.time_format,
                      sentinel_values=sentinel,
                      static_variables=tuple(s.strip() for s in args.static.split(",")) if args.static else None,
                      max_time_hours=args.max_time_hours, task=getattr(args, "task", "stay"),
                      horizon_hours=getattr(args, "horizon_hours", None))


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
