"""Benchmark: train and compare all seven models on PhysioNet 2012 set A (4,000 patients).

Usage (from the repository root)::

    .venv/bin/python bench/bench_train.py                 # quick + full presets, each in a fresh process
    .venv/bin/python bench/bench_train.py --cv 5          # also 5-fold CV AUROC means (slow: ~5x full)
    .venv/bin/python bench/bench_train.py --preset quick  # one preset

Prints per-model training seconds, peak resident memory (``ru_maxrss``: tracemalloc misses torch's
allocations) and test metrics, and writes ``bench/results_train.json``. Each preset runs in its own
process so its peak memory is its own. Targets (2-core box): full <= 90 s and <= 3 GB, quick <= 20 s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "physionet2012"
OUT = ROOT / "bench" / "results_train.json"
#: AUROCs of a reference pipeline on unseen set-A patients (from the issue), for context only.
REFERENCE_AUROC = {"gbm": 0.857, "lr": 0.856, "rnn": 0.848, "gru": 0.845, "rf": 0.837, "svm": 0.826}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _load():
    from core.config import DataConfig
    from core.data.ingest import load_cohort
    return load_cohort(DATA / "set-a.csv.gz", DATA / "outcomes-a.csv", config=DataConfig(target="in_hospital_death"))


def worker(preset: str, seed: int) -> dict:
    """One preset, in this process: load, features, 7 models, evaluation. Returns a JSON-able dict."""
    from core.training.experiment import run_experiment
    from core.features import FeatureBuilder
    t0 = time.perf_counter()
    cohort = _load()
    load_s = time.perf_counter() - t0
    ids = cohort.labelled_ids
    t = time.perf_counter()
    fb = FeatureBuilder().fit(cohort, ids[: int(0.7 * len(ids))])
    fs = fb.transform(cohort, ids)
    feat_s = time.perf_counter() - t
    rss_after = {}

    def progress(msg: str, frac: float) -> None:
        name, _, detail = msg.partition(": ")
        if detail.startswith("done"):
            rss_after[name] = round(_rss_mb(), 1)
            print(f"  [{preset}] {msg}", file=sys.stderr, flush=True)

    t = time.perf_counter()
    res = run_experiment(cohort, None, preset=preset, random_state=seed, progress=progress)
    total = time.perf_counter() - t
    models = {}
    for name, ev in res.test.items():
        m = ev.metrics
        models[name] = {"train_seconds": round(res.train_seconds[name], 2), "auroc": round(m["auroc"], 4),
                        "auroc_ci": [round(v, 4) for v in ev.ci["auroc"]], "auprc": round(m["auprc"], 4),
                        "brier": round(m["brier"], 4), "min_se_ppv": round(m["min_se_ppv"], 4),
                        "validation_auroc": round(res.validation[name].metrics["auroc"], 4),
                        "peak_rss_mb_after": rss_after.get(name), "reference_auroc": REFERENCE_AUROC.get(name)}
    return {"preset": preset, "seed": seed, "load_seconds": round(load_s, 2),
            "features_seconds_4000_patients": round(feat_s, 2), "features_shape_seq": list(fs.X_seq.shape),
            "features_shape_tab": list(fs.X_tab.shape), "experiment_seconds": round(total, 2),
            "train_seconds_sum": round(sum(res.train_seconds.values()), 2), "peak_rss_mb": round(_rss_mb(), 1),
            "reference": res.reference, "models": models,
            "comparisons": [c.sentence for c in res.comparisons]}


def cv_worker(n_folds: int, preset: str, seed: int) -> dict:
    from core.training.experiment import cross_validate
    cohort = _load()
    t = time.perf_counter()
    df = cross_validate(cohort, None, preset=preset, n_folds=n_folds, random_state=seed,
                        progress=lambda m, f: print(f"  [cv] {m}", file=sys.stderr, flush=True))
    g = df.groupby("model", sort=False)
    return {"n_folds": n_folds, "preset": preset, "seconds": round(time.perf_counter() - t, 1),
            "auroc_mean": g["auroc"].mean().round(4).to_dict(), "auroc_sd": g["auroc"].std().round(4).to_dict(),
            "auprc_mean": g["auprc"].mean().round(4).to_dict()}


def _print(r: dict) -> None:
    print(f"\n== preset {r['preset']}: experiment {r['experiment_seconds']} s (training {r['train_seconds_sum']} s), "
          f"peak RSS {r['peak_rss_mb']:.0f} MB; load {r['load_seconds']} s; features (4,000 patients) "
          f"{r['features_seconds_4000_patients']} s")
    print(f"{'model':6} {'train_s':>8} {'AUROC':>7} {'95% CI':>17} {'AUPRC':>7} {'Brier':>7} {'minSePPV':>9} "
          f"{'ref AUROC':>9}")
    for n, m in r["models"].items():
        ci = f"[{m['auroc_ci'][0]:.3f}, {m['auroc_ci'][1]:.3f}]"
        ref = f"{m['reference_auroc']:.3f}" if m["reference_auroc"] else "-"
        print(f"{n:6} {m['train_seconds']:8.1f} {m['auroc']:7.3f} {ci:>17} {m['auprc']:7.3f} {m['brier']:7.3f} "
              f"{m['min_se_ppv']:9.3f} {ref:>9}")
    for s in r["comparisons"]:
        print("  " + s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=["quick", "full"], action="append")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cv", type=int, default=0, help="also run k-fold CV with the full preset (k >= 2)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, _, preset = args.worker.partition(":")
        out = cv_worker(args.cv, preset, args.seed) if kind == "cv" else worker(preset, args.seed)
        print(json.dumps(out))
        return 0
    if not DATA.exists():
        print(f"PhysioNet 2012 set A not found at {DATA}; see the README for where to put it.", file=sys.stderr)
        return 2
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version(),
                           "load_average_at_start": os.getloadavg()},
               "presets": {}}
    for preset in args.preset or ["quick", "full"]:
        proc = subprocess.run([sys.executable, __file__, "--worker", f"one:{preset}", "--seed", str(args.seed)],
                              capture_output=True, text=True)
        sys.stderr.write(proc.stderr[-3000:] if proc.returncode else "")
        if proc.returncode:
            return proc.returncode
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results["presets"][preset] = r
        _print(r)
    if args.cv >= 2:
        proc = subprocess.run([sys.executable, __file__, "--worker", "cv:full", "--cv", str(args.cv),
                               "--seed", str(args.seed)], capture_output=True, text=True)
        if proc.returncode:
            sys.stderr.write(proc.stderr[-3000:])
            return proc.returncode
        results["cv"] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"\n== {args.cv}-fold CV (full preset), AUROC mean (sd):")
        for n, v in results["cv"]["auroc_mean"].items():
            print(f"  {n:6} {v:.3f} ({results['cv']['auroc_sd'][n]:.3f})")
    results["machine"]["load_average_at_end"] = os.getloadavg()
    OUT.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
