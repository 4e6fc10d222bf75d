"""Benchmark: explanations of every model on PhysioNet 2012 set A.

Targets on the 2-core reference machine: one patient explained by all seven models in <= 5 s total;
global attributions on 500 test patients for every model in <= 60 s total.
Run: python bench/bench_explain.py [--run RUN_DIR] [--preset quick|full]
Without --run it trains the models with the engine (``--preset``, default quick) into a temporary
folder first (not timed). Prints per-model seconds and additivity errors and writes
bench/results_explain.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "physionet2012"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="an existing run folder trained on set A (skips training)")
    ap.add_argument("--preset", default="quick", choices=["quick", "full"])
    ap.add_argument("--patients", type=int, default=500, help="test patients for the global attributions")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results_explain.json"))
    args = ap.parse_args()
    if not (DATA / "set-a.csv.gz").exists():
        print(f"skip: {DATA} not found (the PhysioNet sample lives in ../shared beside the repo)")
        return 0
    import numpy as np

    from core.config import DataConfig
    from core.analysis.explain import compare_importance, explain_models, importance_agreement
    from core.data.ingest import load_cohort
    from core.runs.store import load_run, save_run

    cohort = load_cohort(DATA / "set-a.csv.gz", DATA / "outcomes-a.csv",
                         config=DataConfig(target="in_hospital_death"))
    run_dir = args.run
    if run_dir is None:
        from core.training.experiment import run_experiment
        from core.config import EvaluationConfig
        t0 = time.perf_counter()
        res = run_experiment(cohort, preset=args.preset, evaluation=EvaluationConfig(n_bootstrap=0))
        run_dir = save_run(res, Path(tempfile.mkdtemp(prefix="bench_explain_")) / "run")
        print(f"trained {len(res.models)} models ({args.preset}) in {time.perf_counter() - t0:.0f} s -> {run_dir}")
    run = load_run(run_dir)
    names = list(run.models)
    test = [p for p in map(str, run.splits["test"])][: args.patients]
    one = test[:1]
    explain_models(run, names, cohort, one)    # warm-up: imports (shap, torch) and first-call overheads

    # One patient, every model: end to end (features for the patient + background built once, then
    # each explainer); per-model seconds are the explainer's own time.
    rows = {}
    t0 = time.perf_counter()
    local = explain_models(run, names, cohort, one)
    total_one = time.perf_counter() - t0
    print(f"\none patient ({one[0]}), every model:")
    for r in local:
        rows[r.model_name] = {"one_patient_seconds": round(r.seconds, 3),
                              "one_patient_additivity_error": r.additivity_error}
        print(f"  {r.model_name:5s} {r.seconds:6.2f} s   additivity error {r.additivity_error:.2g} ({r.output})")
    print(f"  total {total_one:.2f} s end to end, features included (target <= 5 s)")

    t0, c0 = time.perf_counter(), time.process_time()
    results = explain_models(run, names, cohort, test)
    total_global, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"\n{len(test)} test patients, every model:")
    for r in results:
        err = np.abs(r.attributions.sum(1) + r.base_value - r.predictions)
        rows[r.model_name].update({"global_seconds": round(r.seconds, 3), "global_additivity_error": r.additivity_error,
                                   "global_median_abs_error": float(np.median(err)), "output": r.output,
                                   "method": r.method, "top_variables": list(r.importance().index[:5])})
        print(f"  {r.model_name:5s} {r.seconds:6.2f} s   additivity error max {r.additivity_error:.2g} "
              f"({r.output})   top: {', '.join(r.importance().index[:3])}")
    load = os.getloadavg()[0]
    print(f"  total {total_global:.1f} s end to end (cpu {cpu:.1f} s), features included (target <= 60 s); "
          f"load average {load:.1f} on {os.cpu_count()} cores (other processes slow wall times)")
    table = compare_importance(results)
    agree = importance_agreement(table)
    print("\nSpearman agreement of variable importance:\n" + agree.round(2).to_string())
    out = {"machine": {"python": platform.python_version(), "processor": platform.processor(),
                       "cpus": os.cpu_count(), "load_average_1min_at_end": round(load, 2)},
           "run": str(run_dir), "preset": run.config.get("preset"), "n_patients_global": len(test),
           "one_patient_total_seconds": round(total_one, 3), "global_total_seconds": round(total_global, 3),
           "global_total_cpu_seconds": round(cpu, 3),
           "targets": {"one_patient_total_seconds": 5.0, "global_total_seconds": 60.0},
           "models": rows, "agreement": agree.round(4).to_dict()}
    Path(args.out).write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
