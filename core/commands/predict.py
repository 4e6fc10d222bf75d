"""``python -m core predict RUN_DIR EVENTS --out PRED.csv``: score unseen patients with a saved run.

Writes one row per patient and model: ``patient_id, model, risk, predicted`` (risk in [0, 1];
predicted = 1 when risk >= the threshold saved with the model). An online run writes one row per
patient, hour and model: ``patient_id, time, model, risk, predicted``, for every hour that has a row
in EVENTS; the risk of an hour uses data up to and including it. No labels are needed, and a label
column in EVENTS (e.g. the run's target) is never read as a feature. When the run holds refitted
models (``train --refit``) they are used, and the message says so.

Exit 2 with a message (no traceback) when the run fails its checks (a changed, missing or added file,
no manifest: :func:`core.runs.store.load_run`), when a model gives a NaN risk (never written as "not at
risk"), or when ``--out`` cannot be written (an existing folder, a parent that is a file).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from core.commands.common import add_data_arguments, add_scoring_arguments, data_config_from_args
from core.exceptions import CoreError

__all__ = ["add_parser", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("predict", help="score new patients with a saved run",
                       description="Load RUN_DIR (from `train`), read EVENTS with the same validation as "
                                   "loading, and write risks per patient and model to --out (CSV, "
                                   "spreadsheet-safe).")
    p.add_argument("run_dir", help="run folder written by `python -m core train`")
    p.add_argument("events", help="events file, folder or zip of the patients to score")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--models", help="comma-separated subset of the run's models (default: all)")
    add_scoring_arguments(p)
    p.add_argument("--trajectory", action="store_true",
                   help="stay runs: write each patient's risk from the data up to every hour (patient_id, "
                        "time_hours, model, risk, predicted) instead of one risk per stay")
    add_data_arguments(p, labels=False)
    return p


def run(args: argparse.Namespace) -> int:
    from core.runs.export import check_out_file, safe_csv
    from core.data.ingest import load_cohort
    from core.models.registry import parse_names
    from core.data.mapping import parse_mapping
    from core.runs.predict import data_config_for, map_to_run, predict_patients, risk_trajectories
    from core.runs.store import load_run

    check_out_file(args.out, example="predictions.csv")     # before any work: an existing folder is exit 2
    try:
        names = parse_names(args.models) if args.models else None
        config = replace(data_config_from_args(args), target=None)
        user_map = parse_mapping(args.mapping)
    except ValueError as err:
        raise CoreError(str(err)) from None
    run_ = load_run(args.run_dir, models=names)
    if args.trajectory and run_.online:        # before reading the data: refused at once
        raise CoreError(f"Run {run_.name} predicts every hour already (an online run), so its output is per "
                        "patient-hour; leave out --trajectory.")
    # the run's task shape, no target (the Predict page reads its uploads the same way): an online run scores
    # every hour with a row; the run's label column is dropped, never used as a feature
    cohort = load_cohort(args.events, None, config=data_config_for(run_.online, config))
    cohort, matched = map_to_run(run_, cohort, user_map)
    for line in matched.lines():
        print(f"mapped: {line}", file=sys.stderr)
    result = predict_patients(run_, cohort, allow_missing=args.allow_missing)   # the Predict page's code path too
    for line in (result.match, result.seen_sentence(), *result.warnings):
        if line:
            print(f"warning: {line}", file=sys.stderr)
    preds = result.scores
    if args.trajectory:         # about 55 ms per patient (demo, lr + gbm + gru): worth a bar
        from core.commands.common import progress_bar
        bar = progress_bar(cohort.n_patients, "risk trajectories", unit="patient")
        done = [0]

        def step(message: str, fraction: float) -> None:
            n = int(round(fraction * cohort.n_patients))
            bar.update(n - done[0])
            done[0] = n
        preds = risk_trajectories(run_, cohort, progress=step)
        bar.close()
    path = safe_csv(preds, args.out)
    n = preds["patient_id"].nunique()
    which = "refitted on training + validation patients" if run_.refitted else "fitted on training patients"
    hours = f", {len(preds) // max(len(run_.models), 1):,} patient-hours" if run_.online else ""
    if args.trajectory:
        hours = f", risk trajectories ({len(preds) // max(len(run_.models), 1):,} patient-steps)"
    print(f"Scored {n} patients{hours} with {len(run_.models)} model(s) from {run_.folder} ({which}); wrote {path}.")
    return 0
