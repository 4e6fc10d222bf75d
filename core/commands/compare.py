"""``python -m core compare RUN_A RUN_B [--out table.csv]``: two runs side by side on their common test patients.

For each model both runs have, run B's test AUROC against run A's on the test patients both scored (for online
runs, the same patient-hours): difference B minus A, 95% interval, p-value (DeLong for stays, a paired bootstrap
over patients for patient-hours) and the p-value Holm-adjusted over the models (:mod:`core.runs.pair`).

Exit 2 with a message when a run fails its checks, the runs have another task shape, no model or no test patient
in common, or their labels disagree (another outcome).
"""
from __future__ import annotations

import argparse

from core.exceptions import CoreError

__all__ = ["add_parser", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("compare", help="compare two saved runs on their common test patients",
                       description="Reopen RUN_A and RUN_B (every file checked against its manifest) and compare "
                                   "each model they share, B against A, on the test patients both scored: AUROC "
                                   "difference with a 95%% interval, p-value and Holm-adjusted p-value.")
    p.add_argument("run_a", help="the first run folder (the baseline)")
    p.add_argument("run_b", help="the second run folder (the change)")
    p.add_argument("--out", help="CSV file to write the table to (spreadsheet-safe)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    return p


def run(args: argparse.Namespace) -> int:
    from core.runs.export import check_out_file, safe_csv
    from core.service import PairRequest, run_request

    if args.out:
        check_out_file(args.out, example="comparison.csv")
    if args.run_a == args.run_b:
        raise CoreError(f"Both runs are {args.run_a}; give two different run folders.")
    pair = run_request(PairRequest(a=args.run_a, b=args.run_b, n_bootstrap=max(args.bootstrap, 1),
                                   random_state=args.seed), None)
    print(pair.sentence())
    t = pair.table
    for r in t.itertuples(index=False):
        print(f"  {r.model}: A {r[1]:.3f}, B {r[2]:.3f}, B - A {r.difference:+.3f} [{r[4]:+.3f}, {r[5]:+.3f}], "
              f"p={r.p:.3f}, Holm p={r[7]:.3f}: {r.verdict}")
    if args.out:
        print(f"Wrote {safe_csv(t, args.out)}.")
    return 0
