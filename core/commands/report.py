"""``python -m core report RUN_DIR --out report.html [--timeorder DIR/timeorder.json]``.

Writes one self-contained HTML file (no network request when opened; plotly.js inlined once) with the
run's data summary, split, metrics with CIs, paired tests, ROC / PR / calibration and decision curves,
the time-order verdict when a timeorder.json of the same data is in or next to the run, library versions
and the TRIPOD+AI checklist (see :mod:`core.runs.report`).

Exit 2 with a message (no traceback) when the run is missing or fails its checks (:func:`core.runs.store.load_run`),
or when ``--out`` cannot be written (an existing folder, a parent that is a file).
"""
from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="write a self-contained HTML report of a saved run",
                       description="Reopen RUN_DIR (from `train`; every file checked against its manifest) and "
                                   "write one HTML file that opens offline: data summary, split, metrics with CIs, "
                                   "paired tests, ROC/PR/calibration and decision curves, time order, versions, "
                                   "TRIPOD+AI checklist.")
    p.add_argument("run_dir", help="run folder written by `python -m core train`")
    p.add_argument("--out", required=True, help="HTML file to write, e.g. report.html")
    p.add_argument("--timeorder", help="a timeorder.json to include (default: one of the same data in or next to "
                                       "the run folder)")
    return p


def run(args: argparse.Namespace) -> int:
    from core.runs.export import check_out_file
    from core.runs.report import write_report

    check_out_file(args.out, example="report.html")      # before any work: an existing folder is exit 2
    path = write_report(args.run_dir, args.out, timeorder=args.timeorder)
    size = path.stat().st_size / 2**20
    print(f"Wrote {path} ({size:.1f} MB, self-contained: opens without a network connection).")
    return 0
