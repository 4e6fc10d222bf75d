"""Benchmark: one temporal what-if (core.analysis.whatif.whatif) for one patient, stay run and online run.

Target: < 1 s per patient (original and edited risks of every model, as the Timeline page asks).
Run: python bench/bench_whatif.py [--stay-run DIR] [--online-run DIR] [--patients 10]
Without a run folder it trains one first (quick preset, not timed): lr, gbm, gru on the demo cohort (stay),
and lr, gbm, gru on 1,000 stays of the PhysioNet 2019 hourly data (online; skipped when
../shared/data/physionet2019 is absent), timed on its test patients and the file's longest stay (336 h). Each patient gets one edit (an HR value at mid-stay) and a stack of
three (edit + add + remove); prints median and max seconds and writes bench/results_whatif.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
MODELS = ["lr", "gbm", "gru"]


def _train(cohort, label: str) -> Path:
    from core.config import EvaluationConfig
    from core.training.experiment import run_experiment
    from core.runs.store import save_run
    t0 = time.perf_counter()
    res = run_experiment(cohort, MODELS, preset="quick", evaluation=EvaluationConfig(n_bootstrap=0))
    folder = save_run(res, Path(tempfile.mkdtemp(prefix=f"bench_whatif_{label}_")) / "run")
    print(f"{label}: trained {', '.join(MODELS)} (quick) in {time.perf_counter() - t0:.0f} s -> {folder}")
    return folder


def _edits(cohort, pid: str, window: float):
    """One edit and a stack of three, on the patient's most measured variable around mid-stay."""
    from core.analysis.whatif import Edit
    ev = cohort.patient_events(pid)
    ev = ev[ev["time_hours"] <= window]
    var = str(ev["variable"].astype(str).value_counts().index[0])
    t = ev.loc[ev["variable"].astype(str) == var, "time_hours"].to_numpy()
    mid, later = float(t[len(t) // 2]), float(t[-1])
    value = float(ev.loc[ev["variable"].astype(str) == var, "value"].max()) * 1.5
    one = [Edit("edit", var, mid, value)]
    three = one + [Edit("add", var, min(mid + 0.5, window), value), Edit("remove", var, later)] \
        if later > mid else one * 3
    return one, three


def _time(run, cohort, ids, label: str) -> dict:
    import numpy as np

    from core.analysis.whatif import whatif
    window = float(run.builder.config.window_hours)
    one, _ = _edits(cohort, ids[0], window)
    whatif(run, cohort, ids[0], one)                          # warm-up (imports, first torch call)
    out = {}
    for name, pick in (("1 edit", 0), ("3 stacked edits", 1)):
        secs, hours = [], []
        for pid in ids:
            edits = _edits(cohort, pid, window)[pick]
            t0 = time.perf_counter()
            res = whatif(run, cohort, pid, edits)
            secs.append(time.perf_counter() - t0)
            hours.append(len(res.original))
        out[name] = {"median_s": float(np.median(secs)), "max_s": float(np.max(secs)),
                     "median_hours_scored": float(np.median(hours)), "max_hours_scored": int(max(hours))}
        print(f"{label}, {name}: median {np.median(secs):.3f} s, max {np.max(secs):.3f} s per patient "
              f"({len(ids)} patients; {int(np.median(hours))} scored hours median, {max(hours)} max)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stay-run", help="a run folder trained on the demo cohort (skips training)")
    ap.add_argument("--online-run", help="a run folder trained on the 2019 subset (skips training)")
    ap.add_argument("--patients", type=int, default=10, help="test patients timed per run")
    ap.add_argument("--online-stays", type=int, default=1000, help="stays of the 2019 data for the online run")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results_whatif.json"))
    args = ap.parse_args()
    from core.config import DataConfig
    from core.data.demo import DEMO_TARGET, demo_paths
    from core.data.ingest import load_cohort
    from core.runs.store import load_run

    results = {"machine": platform.platform(), "models": MODELS, "preset": "quick"}
    events, labels = demo_paths()
    demo = load_cohort(events, labels, config=DataConfig(target=DEMO_TARGET))
    run = load_run(args.stay_run or _train(demo, "demo"))
    ids = [str(p) for p in run.splits["test"]][: args.patients]
    results["stay (demo)"] = _time(run, demo, ids, "stay run (demo)")

    path = SHARED / "physionet2019" / "hourly.csv.gz"
    if not path.exists():
        print(f"skip the online run: {path} not found (the PhysioNet 2019 sample lives in ../shared)")
    else:
        full = load_cohort(path, config=DataConfig(task="online", target="SepsisLabel", horizon_hours=6))
        cohort = full.subset(full.patient_ids[: args.online_stays])
        run = load_run(args.online_run or _train(cohort, "online"))
        test = [str(p) for p in run.splits["test"]]
        # the longest stay of the whole file (336 h, the stay cap) as the worst case, then test patients
        last = full.events.groupby("patient_id", observed=True)["time_hours"].max()
        longest = str(last.idxmax())
        ids = [longest] + [p for p in test if p != longest][: args.patients - 1]
        results["online (2019, %d stays)" % args.online_stays] = _time(run, full, ids, "online run (2019)")
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
