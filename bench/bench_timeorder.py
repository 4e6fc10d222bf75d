"""Benchmark: the time-order analysis on PhysioNet 2012 set A and on the synthetic demo cohort.

Prints, per data set, the verdict, the ablation delta (ordered - shuffled AUROC, 95% paired
bootstrap CI), the sequence vs order-free gap and the wall time, and saves everything to
``bench/results_timeorder.json`` (the full ``timeorder.json`` of each data set plus seconds).

Run: python bench/bench_timeorder.py [--models lr,svm,rf,gbm,rnn,lstm,gru] [--preset quick]
     [--horizons 6,12,24,36,48] [--only demo|physionet]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "physionet2012"


def _load(name: str):
    from core.config import DataConfig
    from core.data.demo import DEMO_TARGET, demo_paths
    from core.data.ingest import load_cohort
    if name == "demo":
        events, labels = demo_paths()
        return load_cohort(events, labels, config=DataConfig(target=DEMO_TARGET))
    return load_cohort(DATA / "set-a.csv.gz", DATA / "outcomes-a.csv", config=DataConfig(target="in_hospital_death"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lr,svm,rf,gbm,rnn,lstm,gru")
    ap.add_argument("--model", default="gru", help="ablation model")
    ap.add_argument("--horizons", default="6,12,24,36,48")
    ap.add_argument("--preset", default="quick", choices=["quick", "full", "test"])
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=["demo", "physionet"], default=None)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results_timeorder.json"))
    args = ap.parse_args()
    import torch

    from core.config import EvaluationConfig, SplitConfig
    from core.analysis.timeorder import TimeOrderConfig, run_timeorder

    config = TimeOrderConfig(model=args.model, models=tuple(args.models.split(",")),
                             horizons_hours=tuple(float(h) for h in args.horizons.split(",")), preset=args.preset,
                             split=SplitConfig(validation_size=0.15, test_size=0.2, random_state=args.seed),
                             evaluation=EvaluationConfig(n_bootstrap=args.bootstrap, random_state=args.seed),
                             random_state=args.seed)
    out = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()},
           "results": {}}
    names = [args.only] if args.only else ["demo", "physionet"]
    for name in names:
        if name == "physionet" and not (DATA / "set-a.csv.gz").exists():
            print(f"skip physionet: {DATA} not found (the sample lives in ../shared beside the repo)")
            continue
        t0 = time.perf_counter()
        cohort = _load(name)
        load_s = time.perf_counter() - t0
        last = [-1]

        def progress(msg, frac):
            pct = int(frac * 10)
            if pct != last[0]:
                last[0] = pct
                print(f"  [{name}] {100 * frac:5.1f}% {msg}", file=sys.stderr, flush=True)

        res = run_timeorder(cohort, config, progress=progress)
        a, g = res.ablation, res.gap
        print(f"\n== {name}: {cohort.n_patients:,} patients, load {load_s:.1f} s, analysis {res.seconds:.0f} s")
        print(f"verdict: {res.verdict}")
        print(f"ablation ({a.label}): ordered {a.auroc_ordered:.3f}, shuffled+retrained {a.auroc_shuffled:.3f}, "
              f"delta {a.delta:+.3f} [{a.delta_ci[0]:+.3f}, {a.delta_ci[1]:+.3f}]; ordered model on shuffled "
              f"{a.auroc_shuffled_test:.3f} (delta {a.delta_shuffled_test:+.3f})")
        if g is not None:
            print(f"gap: {g.sequence_label} {g.auroc_sequence:.3f} vs {g.order_free_label} {g.auroc_order_free:.3f}: "
                  f"{g.difference:+.3f} [{g.ci_low:+.3f}, {g.ci_high:+.3f}], DeLong p={g.delong_p:.3f}")
        print(res.horizons.pivot(index="model", columns="hours", values="auroc").to_string(
            float_format=lambda v: f"{v:.3f}"))
        out["results"][name] = {"load_seconds": round(load_s, 2), "analysis_seconds": round(res.seconds, 1),
                                **res.to_dict()}
        Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"\nSaved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
