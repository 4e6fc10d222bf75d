"""``python -m core evaluate RUN_DIR EVENTS --labels L --target T --out DIR``: measure a run on labelled new data.

External validation (:mod:`core.runs.external`): the run's models score the new patients as ``predict`` does
(variables matched by name, spelling and synonym, plus ``--map NEW=RUN``), and are measured against the new
labels: ``DIR/metrics.json`` (the keys of the run's own metrics.json, ``auroc_ci`` included, plus calibration and
the difference from the run's internal test metrics), ``DIR/subgroups.csv`` (per static attribute; ``--subgroups``
picks them), ``DIR/shift.csv`` (the variables whose distributions moved most) and ``DIR/predictions.csv``.

The task shape is the run's: an online run needs a label per hour (``--target`` names the hourly column).
Exit 2 with a message when the run fails its checks, the data have no labels, no run variable is in them, or
``--out`` is a file.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from core.commands.common import add_data_arguments, add_scoring_arguments, data_config_from_args
from core.exceptions import CoreError

__all__ = ["add_parser", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("evaluate", help="measure a saved run on labelled data from elsewhere (external validation)",
                       description="Reopen RUN_DIR (every file checked against its manifest), score EVENTS with its "
                                   "models and measure them against the labels: metrics with 95%% intervals, "
                                   "calibration, subgroups, shifted variables, written to --out.")
    p.add_argument("run_dir", help="run folder written by `python -m core train`")
    p.add_argument("events", help="events file, folder or zip of the new patients")
    p.add_argument("--out", required=True, help="folder to write metrics.json, subgroups.csv, shift.csv, "
                                                "predictions.csv into (created)")
    add_scoring_arguments(p)
    p.add_argument("--subgroups", help="comma-separated static attributes to form subgroups by (default: all)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    add_data_arguments(p, labels=True)
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.data.ingest import load_cohort
    from core.data.mapping import parse_mapping
    from core.runs.external import write_external
    from core.runs.store import load_run
    from core.service import EvaluateRequest, run_request

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CoreError(f"--out {out} is a file; give a folder to write the results into (it is created).")
    if not args.target:
        raise CoreError("External validation needs the outcome: name it with --target (and give --labels FILE when "
                        "the labels are in a file of their own).")
    try:
        config = data_config_from_args(args)
        user_map = parse_mapping(args.mapping)
    except ValueError as err:
        raise CoreError(str(err)) from None
    run_ = load_run(args.run_dir)
    config = replace(config, task="online" if run_.online else "stay")
    cohort = load_cohort(args.events, args.labels, config=config)
    attributes = tuple(a.strip() for a in args.subgroups.split(",") if a.strip()) if args.subgroups else None
    request = EvaluateRequest(run=str(args.run_dir), mapping=tuple(user_map.items()), attributes=attributes,
                              n_bootstrap=max(args.bootstrap, 1), random_state=args.seed, source=str(args.events),
                              allow_missing=args.allow_missing)
    result = run_request(request, cohort)
    for line in result.mapping.lines():
        print(f"mapped: {line}", file=sys.stderr)
    for line in (result.match, *result.warnings):
        if line:
            print(f"warning: {line}", file=sys.stderr)
    write_external(result, out)
    print(f"Run {run_.name} on {result.n_patients:,} patients of {args.events}:")
    for r in result.table().itertuples(index=False):
        print(f"  {r.model}: AUROC {r.auroc:.3f} {r[2]} (internal {r[3]:.3f}, {r.difference:+.3f}); calibration in "
              f"the large {r[7]:+.2f}, slope {r[8]:.2f}")
    top = result.shift.dropna(subset=["smd"]).head(3)
    if len(top):
        print("  moved most: " + ", ".join(f"{v} (SMD {s:+.2f})" for v, s in zip(top["variable"], top["smd"])))
    print(f"Wrote {out}/metrics.json, subgroups.csv, shift.csv, predictions.csv.")
    return 0
