"""Benchmark: K-fold cross-validation of the protocol on set A and the 2019 data (stay and online tasks).

Usage (from the repository root)::

    .venv/bin/python bench/bench_online.py --data 2019-online --models lr,gbm,gru --folds 5 --preset quick
    .venv/bin/python bench/bench_online.py --data seta --models lr,svm,rf,gbm,rnn,lstm,gru,grud --preset full
    .venv/bin/python bench/bench_online.py --data 2019-stay ... --params "gru:stop_on=auroc,patience=8"
    .venv/bin/python bench/bench_online.py --data 2019-online --folds 0 --models lr,gbm,gru   # one split: time, memory

Data: ``seta`` (PhysioNet 2012 set A, in-hospital death, first 48 h), ``2019-stay`` (PhysioNet 2019, sepsis at
any hour of the stay, from the first ``--window-hours`` of data, default 48), ``2019-online`` (SepsisLabel at
every hour, whole stays up to ``--max-hours``, default 336). Every number is on cross-validation test folds; models and
their thresholds are chosen on training/validation patients only (see core.training.protocol).

Prints, per model, the mean and sd over folds of AUROC, AUPRC and min(Se, PPV) (pooled over patient-hours online),
the seconds, the peak resident memory, and the targets of issue 7; appends the result to ``--out`` (JSON list).
With ``--folds 0`` it runs one 70/15/15 split and reports training time, peak memory and the alarm metrics.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def _rss_mb() -> float:
    """Peak resident memory so far (ru_maxrss: tracemalloc misses torch's allocations)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _now_mb() -> float:
    """Resident memory now (Linux /proc/self/statm)."""
    import os
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _params(text: str | None) -> dict:
    """``"gru:stop_on=auroc,patience=8;lstm:lr=0.001"`` -> ``{"gru": {...}, "lstm": {...}}``."""
    out: dict = {}
    for part in filter(None, (text or "").split(";")):
        name, _, kv = part.partition(":")
        for item in filter(None, kv.split(",")):
            k, _, v = item.partition("=")
            try:
                val = json.loads(v)
            except ValueError:
                val = v
            out.setdefault(name.strip(), {})[k.strip()] = val
    return out


def load(data: str):
    from core.config import DataConfig
    from core.data.ingest import load_cohort
    if data == "seta":
        d = SHARED / "physionet2012"
        return load_cohort(d / "set-a.csv.gz", d / "outcomes-a.csv", config=DataConfig(target="in_hospital_death"))
    path = SHARED / "physionet2019" / "hourly.csv.gz"
    if data == "2019-online":
        return load_cohort(path, config=DataConfig(task="online", target="SepsisLabel", horizon_hours=6))
    # stay task: "sepsis at any hour of the stay" (the label's maximum per patient), features of the first hours
    cohort = load_cohort(path, config=DataConfig(task="online", target="SepsisLabel", horizon_hours=6))
    from dataclasses import replace
    return replace(cohort, hour_labels=None, onsets=None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=["seta", "2019-stay", "2019-online"], required=True)
    ap.add_argument("--models", default="lr,gbm,gru")
    ap.add_argument("--preset", choices=["test", "quick", "full"], default="quick")
    ap.add_argument("--folds", type=int, default=5, help="K of the cross-validation (0 = one split)")
    ap.add_argument("--max-hours", type=float, default=336.0, help="stay cap of the online task")
    ap.add_argument("--window-hours", type=float, default=48.0, help="hours of data of a stay task")
    ap.add_argument("--params", help='extra model parameters, e.g. "gru:stop_on=auroc,patience=8"')
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--note", default="", help="free text saved with the result")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results_online.json"))
    args = ap.parse_args()
    import numpy as np

    from core.config import FeatureConfig, SplitConfig
    from core.training.experiment import cross_validate, run_experiment
    names = tuple(args.models.split(","))
    params = _params(args.params)
    t0 = time.perf_counter()
    cohort = load(args.data)
    load_s = time.perf_counter() - t0
    online = args.data == "2019-online"
    features = FeatureConfig(task="online", window_hours=args.max_hours) if online else \
        FeatureConfig(window_hours=args.window_hours)
    result = {"data": args.data, "models": list(names), "preset": args.preset, "folds": args.folds,
              "params": params, "seed": args.seed, "note": args.note, "features": asdict(features),
              "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
              "load_seconds": round(load_s, 1)}
    t1 = time.perf_counter()

    def progress(msg, frac):
        if "done in" in msg or msg.startswith("building"):
            print(f"  {time.perf_counter() - t1:7.1f} s  {msg}  (RSS now {_now_mb():.0f} MB, peak {_rss_mb():.0f} MB)",
                  flush=True)

    if args.folds:
        df = cross_validate(cohort, names, preset=args.preset, n_folds=args.folds, features=features,
                            random_state=args.seed, model_params=params, progress=progress)
        summary = df.groupby("model", sort=False)[["auroc", "auprc", "min_se_ppv", "train_seconds"]].agg(
            ["mean", "std"]).round(4)
        print(summary.to_string())
        result["cv"] = {m: {f"{k}_{s}": float(summary.loc[m, (k, s)]) for k in ("auroc", "auprc", "min_se_ppv",
                                                                                 "train_seconds")
                            for s in ("mean", "std")} for m in summary.index}
        result["folds_auroc"] = {m: df[df.model == m]["auroc"].round(4).tolist() for m in summary.index}
        from core.models import registry
        seq = [m for m in result["cv"] if registry.get(m).family == "recurrent"]
        cls = [m for m in result["cv"] if registry.get(m).family == "classical"]
        if seq and cls:
            best_s = max(seq, key=lambda m: result["cv"][m]["auroc_mean"])
            best_c = max(cls, key=lambda m: result["cv"][m]["auroc_mean"])
            gap = result["cv"][best_s]["auroc_mean"] - result["cv"][best_c]["auroc_mean"]
            result["best_sequence_minus_best_classical"] = round(gap, 4)
            print(f"best sequence {best_s} - best classical {best_c}: {gap:+.4f} AUROC (mean over folds)")
        best = max(result["cv"], key=lambda m: result["cv"][m]["auroc_mean"])
        print(f"best model {best}: AUROC {result['cv'][best]['auroc_mean']:.4f}, best min(Se, PPV) "
              f"{max(v['min_se_ppv_mean'] for v in result['cv'].values()):.4f}")
    else:
        res = run_experiment(cohort, names, preset=args.preset, features=features,
                             split=SplitConfig(random_state=args.seed), random_state=args.seed, progress=progress)
        result["single"] = {n: {"auroc": round(float(ev.metrics["auroc"]), 4),
                                "auroc_ci": [round(float(x), 4) for x in ev.ci["auroc"]],
                                "auprc": round(float(ev.metrics["auprc"]), 4),
                                "train_seconds": round(res.train_seconds[n], 1),
                                **{k: (round(float(v), 3) if np.isfinite(v) else None) for k, v in ev.extra.items()
                                   if isinstance(v, float)}}
                            for n, ev in res.test.items()}
        for n, r in result["single"].items():
            print(n, r)
    result["seconds"] = round(time.perf_counter() - t1, 1)
    result["peak_rss_mb"] = round(_rss_mb(), 0)
    print(f"{result['seconds']} s after loading ({result['load_seconds']} s to load); peak RSS {result['peak_rss_mb']:.0f} MB")
    out = Path(args.out)
    runs = json.loads(out.read_text()) if out.exists() else []
    runs.append(result)
    out.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
