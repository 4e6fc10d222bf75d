"""Benchmark: is exploring the 4,000-patient real sample responsive?

Loads PhysioNet 2012 set A once, then times what the Cohort and Patient-timeline pages compute:
the cohort statistics (cached per data set in the app) and, per patient, the lookup, the default
variables and the small-multiples figure (what every patient switch costs).
Run: python bench/bench_explore.py [--patients 200]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "physionet2012"


def _time(fn, *args, **kw) -> float:
    t0 = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=200)
    args = ap.parse_args()
    if not (DATA / "set-a.csv.gz").exists():
        print(f"skip: {DATA} not found")
        return 0
    from core.data import explore
    from core import plots
    from core.config import DataConfig
    from core.data.ingest import load_cohort

    cohort = load_cohort(DATA / "set-a.csv.gz", DATA / "outcomes-a.csv", config=DataConfig(target="in_hospital_death"))
    once = {
        "overview": _time(explore.cohort_overview, cohort),
        "missingness_by_hour": _time(explore.missingness_by_hour, cohort),
        "sampling_intervals": _time(explore.sampling_intervals, cohort),
        "sequence_lengths": _time(explore.sequence_lengths, cohort),
        "per_patient_summary(HR)": _time(explore.per_patient_summary, cohort, "HR", "mean"),
        "coverage_figure": _time(lambda c: plots.coverage_figure(explore.coverage_by_variable(c)), cohort),
    }
    rng = np.random.default_rng(0)
    ids = rng.choice(cohort.patient_ids, size=min(args.patients, cohort.n_patients), replace=False)
    per = []
    for pid in ids:
        t0 = time.perf_counter()
        explore.find_patients(cohort, str(pid)[:4], "all")
        ev = cohort.patient_events(pid)
        variables = explore.default_timeline_variables(cohort, pid)
        plots.timeline_figure(ev, variables, title=str(pid))
        per.append(time.perf_counter() - t0)
    per = np.array(per)
    result = {"patients": cohort.n_patients, "events": int(len(cohort.events)),
              "cohort_stats_seconds": {k: round(v, 3) for k, v in once.items()},
              "patient_switch_seconds": {"median": round(float(np.median(per)), 4),
                                         "p95": round(float(np.quantile(per, 0.95)), 4),
                                         "max": round(float(per.max()), 4)}}
    print(json.dumps(result, indent=2))
    (ROOT / "bench" / "results_explore.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
