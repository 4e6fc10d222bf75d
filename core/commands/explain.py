"""``python -m core explain RUN_DIR EVENTS --model NAME [--patients ID,ID] --out ATTR.csv``.

Writes long rows ``patient_id, time, variable, attribution``: ``time`` is the start of the hourly
step for sequence models and empty for order-free (tabular) models. Attributions are in the
model's explained output (printed: probability or log-odds). Spreadsheet-safe CSV.

Exit 2 with a message (no traceback) when the run fails its checks (:func:`core.runs.store.verify_run`,
:func:`core.runs.store.load_run`) or when ``--out`` cannot be written (an existing folder, a parent that is a file).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from core.commands.common import add_data_arguments, data_config_from_args

__all__ = ["add_parser", "run", "MAX_PATIENTS"]

#: default cap on explained patients when --patients is not given.
MAX_PATIENTS = 500


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("explain", help="per-patient, per-variable attributions (SHAP) of a saved model",
                       description="Load RUN_DIR (from `train`), read EVENTS with the same validation as loading, "
                                   "explain --model on the chosen patients and write long rows patient_id, time, "
                                   "variable, attribution to --out (CSV, spreadsheet-safe).")
    p.add_argument("run_dir", help="run folder written by `python -m core train`")
    p.add_argument("events", help="events file, folder or zip holding the patients to explain (ideally the "
                                  "training data too: its training patients are the reference)")
    p.add_argument("--model", required=True, help="one model of the run (e.g. gbm, gru)")
    p.add_argument("--patients", help="comma-separated patient ids (default: every patient, at most "
                                      f"{MAX_PATIENTS})")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--background", type=int, help="training patients sampled as the reference (default per model)")
    p.add_argument("--nsamples", type=int, help="sample budget: Kernel SHAP coalitions or integration steps")
    p.add_argument("--seed", type=int, default=0, help="seed of the background sample and the coalitions")
    p.add_argument("--hour", type=float,
                   help="online runs: explain each patient's risk at this hour of the stay (data up to and "
                        "including it; patients whose stay ended earlier are left out). Default: the first "
                        "patient's last scored hour")
    add_data_arguments(p, labels=False)
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from core.exceptions import RunError
    from core.analysis.explain import explain_model
    from core.runs.export import check_out_file, safe_csv
    from core.data.ingest import load_cohort
    from core.runs.store import load_run, read_json, verify_run

    check_out_file(args.out, example="attributions.csv")    # before any work: an existing folder is exit 2
    # Check the run's files, then the model name, before reading any data (fast failure, valid names listed).
    folder = Path(args.run_dir)
    verify_run(folder)                     # RunError (exit 2): no folder, no manifest, a changed or added file
    available = list(read_json(folder / "config.json").get("models", []))
    if args.model not in available:
        raise RunError(f"Model {args.model!r} is not in the run {folder}; choose one of: {', '.join(available)}. "
                       f"Example: --model {available[0] if available else 'gbm'}.")
    run_ = load_run(folder, models=[args.model])
    config = replace(data_config_from_args(args), target=None)
    if run_.online:
        config = replace(config, task="online")
    cohort = load_cohort(args.events, None, config=config)
    mismatch = run_.check_data(cohort).sentence()       # RunError (exit 2) when none of its variables is here
    if mismatch:
        print(f"warning: {mismatch}", file=sys.stderr)
    if args.patients:
        ids = [p.strip() for p in args.patients.split(",") if p.strip()]
    else:
        ids = list(cohort.patient_ids)
        if len(ids) > MAX_PATIENTS:
            ids = list(np.asarray(ids, dtype=object)[:MAX_PATIENTS])
            print(f"Explaining the first {MAX_PATIENTS} of {cohort.n_patients} patients (sorted by id). "
                  "Choose others with --patients ID,ID,...")
    result = explain_model(run_, args.model, cohort, ids, background=args.background, nsamples=args.nsamples,
                           random_state=args.seed, hour=args.hour)
    path = safe_csv(result.to_frame(), args.out)
    print(f"Explained {len(result.patient_ids)} patient(s) with {args.model} ({result.method}); attributions "
          f"in {result.output} (base value {result.base_value:.4g}; additivity error "
          f"{result.additivity_error:.2g}) in {result.seconds:.1f} s; wrote {path}.")
    return 0
