"""``python -m core whatif RUN_DIR EVENTS --patient ID --edit KIND:VARIABLE[@HOUR][=VALUE] ... --out WHATIF.csv``.

The Patient timeline's what-if from the command line (:func:`core.analysis.whatif.whatif`, the same code): one
patient's measurements are edited (``edit:HR@5=190`` sets the HR measured at hour 5 to 190,
``add:Lactate@10=4.2`` adds one, ``remove:HR@5`` deletes one, ``drop:Lactate`` deletes every Lactate,
``static:Age=70`` sets a static attribute), several ``--edit`` s applied in order, and every model of the
run scores the patient before and after. Writes long rows ``time_hours, model, original risk, what-if risk,
change`` (spreadsheet-safe CSV) and prints one line per model. EVENTS is only read, never changed.

Exit 2 with a message (no traceback) for a run that fails its checks, an unknown patient, an edit that
cannot be parsed or made (the message says the form and lists the patient's variables or hours), or an
``--out`` that cannot be written.
"""
from __future__ import annotations

import argparse

from core.commands.common import add_data_arguments, data_config_from_args
from core.exceptions import CoreError

__all__ = ["add_parser", "run", "parse_edit"]

_KINDS = {"edit": "edit", "add": "add", "remove": "remove", "drop": "drop_variable", "drop_variable": "drop_variable",
          "static": "static"}
_FORM = ("KIND:VARIABLE[@HOUR][=VALUE], e.g. edit:HR@5=190, add:Lactate@10=4.2, remove:HR@5, drop:Lactate, "
         "static:Age=70")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("whatif", help="edit one patient's measurements and see every model's risk again",
                       description="Load RUN_DIR, read EVENTS (same validation as loading), apply the --edit s to "
                                   "--patient (a copy: EVENTS is not changed) and write every model's risk before "
                                   "and after, hour by hour, to --out (CSV, spreadsheet-safe).")
    p.add_argument("run_dir", help="run folder written by `python -m core train`")
    p.add_argument("events", help="events file, folder or zip holding the patient")
    p.add_argument("--patient", required=True, help="the patient id")
    p.add_argument("--edit", action="append", default=[], metavar="KIND:VARIABLE[@HOUR][=VALUE]",
                   help="one change (repeat for several, applied in order): " + _FORM)
    p.add_argument("--out", required=True, help="CSV file to write")
    add_data_arguments(p, labels=False)
    return p


def parse_edit(text: str, variables=None, window_hours: float | None = None):
    """``"edit:HR@5=190"`` -> ``Edit("edit", "HR", 5.0, 190.0)`` (checked like the page's form)."""
    from core.analysis.whatif import Edit, WhatIfError
    kind, sep, rest = str(text).partition(":")
    if not sep or kind.strip().lower() not in _KINDS or not rest.strip():
        raise WhatIfError(f"--edit {text!r} is not a change this command knows. Write {_FORM}.")
    rest, value = (rest.rsplit("=", 1) + [None])[:2] if "=" in rest else (rest, None)
    variable, hour = (rest.rsplit("@", 1) + [None])[:2] if "@" in rest else (rest, None)
    return Edit(_KINDS[kind.strip().lower()], variable.strip(), hour, value, variables=variables,
                window_hours=window_hours)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from core.runs.export import check_out_file, safe_csv
    from core.data.ingest import load_cohort
    from core.runs.predict import data_config_for
    from core.runs.store import load_run
    from core.analysis.whatif import edit_variables, whatif

    check_out_file(args.out, example="whatif.csv")          # before any work: an existing folder is exit 2
    if not args.edit:
        raise CoreError(f"Give at least one --edit ({_FORM}).")
    try:
        config = data_config_from_args(args)
    except ValueError as err:
        raise CoreError(str(err)) from None
    run_ = load_run(args.run_dir)
    cohort = load_cohort(args.events, None, config=data_config_for(run_.online, config))
    pid = str(args.patient)
    events = cohort.patient_events(pid)
    if not len(events) and pid not in cohort.static.index:
        ids = list(map(str, cohort.patient_ids[:5]))
        raise CoreError(f"Patient {pid!r} is not in {args.events}. Patients there include: {', '.join(ids)}.")
    names = edit_variables(events, run_)
    edits = [parse_edit(e, variables=tuple(names), window_hours=float(run_.builder.config.window_hours))
             for e in args.edit]
    res = whatif(run_, cohort, pid, edits)
    table = res.long_table()
    path = safe_csv(table, args.out)
    print(f"Patient {pid}: " + "; ".join(e.describe() for e in res.edits))
    for _, r in res.summary(labels=True).iterrows():
        at = "" if pd.isna(r["at hour"]) else f"; largest change {r['largest change']:+.3f} at {r['at hour']:g} h"
        print(f"  {r['model']}: {r['original risk']:.3f} -> {r['what-if risk']:.3f} ({r['change']:+.3f}{at})")
    print(f"Wrote {path}.")
    return 0
