"""Diagnostic: does the demo cohort's time-order signal reach the product's own models?

Measures, on cohorts written by :func:`core.data.demo.write_demo`-style files and loaded with
:func:`core.data.ingest.load_cohort` (the product's pipeline, nothing hand-made):

* generation time of 2,000 patients and prevalence;
* ``run_experiment(models=("lr", "gbm", "gru"), preset="quick")`` test AUROC for seeds 0, 1, 2 (each seed
  sets both the 70/15/15 patient split, ``SplitConfig(random_state=s)``, and the models' ``random_state``),
  with ``order_weight=1`` (the committed demo) and ``order_weight=0`` (negative control);
  optionally the ``full`` preset GRU for seed 0 (``--full``);
* aggregate-blindness: the true order flag predicted from the product's per-variable summaries
  (``FeatureSet.X_tab``) by the product's LR and GBM, 5-fold cross-validated AUROC (should be ~0.5);
* the oracle: summaries + the true order flag (LR), the ceiling a sequence model could reach;
* ``run_timeorder`` with the Time-order page default (``models=("lr", "gru")``, horizons 12/24/48,
  quick preset, ``max_patients=2000``, the default seed ensemble of 3 networks) and, with ``--timeorder-all``, with every patient.

Run: python bench/bench_demo_signal.py [--patients 2000] [--seeds 0,1,2] [--full] [--timeorder-all]
     [--skip-timeorder] [--json bench/results_demo_signal.json]
Acceptance targets are printed next to each number (PASS/FAIL).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_predict  # noqa: E402

from core.data import demo  # noqa: E402
from core.config import DataConfig, SplitConfig  # noqa: E402
from core.training.experiment import run_experiment  # noqa: E402
from core.features import FeatureBuilder  # noqa: E402
from core.data.ingest import load_cohort  # noqa: E402
from core.models import registry  # noqa: E402
from core.training.threads import limit_threads  # noqa: E402


def load_variant(n_patients: int, seed: int, order_weight: float, out_dir: Path):
    """Write one generated variant as the demo files are written, load it with the product's loader."""
    events, outcomes, truth = demo.simulate(n_patients, 48.0, seed, float(order_weight), 1.0)
    out_dir.mkdir(parents=True, exist_ok=True)
    events.to_parquet(out_dir / "events.parquet", index=False, compression="zstd")
    outcomes.to_csv(out_dir / "outcomes.csv", index=False)
    cohort = load_cohort(out_dir / "events.parquet", out_dir / "outcomes.csv",
                         config=DataConfig(target=demo.DEMO_TARGET))
    return cohort, outcomes, truth


def order_from_summaries(cohort, outcomes, truth) -> dict:
    """5-fold CV AUROC of the true order flag (and of the outcome with the oracle) from X_tab."""
    ids = outcomes["patient_id"].to_numpy()
    fs = FeatureBuilder().fit(cohort, ids).transform(cohort, ids)   # order-free summaries only
    X = fs.X_tab
    order = truth.order.astype(int)
    y = outcomes[demo.DEMO_TARGET].to_numpy().astype(int)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    out = {}
    # the product's one thread rule (core.training.threads): OpenMP on all cores stalls on a busy 2-core box
    with limit_threads():
        out.update(_order_cv(X, order, y, cv))
    return out


def _order_cv(X, order, y, cv) -> dict:
    out = {}
    for name in ("lr", "gbm"):
        p = cross_val_predict(registry.get(name).make(preset="quick", random_state=0), X, order, cv=cv,
                              method="predict_proba")[:, 1]
        out[f"order_{name}"] = float(roc_auc_score(order, p))
    lr = registry.get("lr").make(preset="quick", random_state=0)
    p = cross_val_predict(lr, X, y, cv=cv, method="predict_proba")[:, 1]
    out["outcome_summaries_lr_cv"] = float(roc_auc_score(y, p))
    X_or = np.column_stack([X, 20.0 * (order - 0.5)])   # large scale: survives LR's strong L2 penalty
    p = cross_val_predict(registry.get("lr").make(preset="quick", random_state=0), X_or, y, cv=cv,
                          method="predict_proba")[:, 1]
    out["outcome_oracle_lr_cv"] = float(roc_auc_score(y, p))
    out["outcome_from_order_flag"] = float(roc_auc_score(y, order))
    return out


def experiments(cohort, seeds, preset="quick", models=("lr", "gbm", "gru")) -> list[dict]:
    rows = []
    for s in seeds:
        t0 = time.perf_counter()
        res = run_experiment(cohort, models=models, preset=preset, split=SplitConfig(random_state=s), random_state=s)
        row = {"seed": s, "preset": preset, **{m: float(res.test[m].metrics["auroc"]) for m in models},
               "gru_best_epoch": [h["best_epoch"] for h in res.models["gru"].history_] if "gru" in models else None,
               "seconds": round(time.perf_counter() - t0, 1)}
        classical = [row[m] for m in models if m != "gru"]
        if classical and "gru" in models:
            row["gru_minus_best_classical"] = row["gru"] - max(classical)
        rows.append(row)
        print("   ", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return rows


def timeorder(cohort, max_patients) -> dict:
    from core.analysis.timeorder import TimeOrderConfig, run_timeorder
    cfg = TimeOrderConfig(models=("lr", "gru"), horizons_hours=(12, 24, 48), preset="quick",
                          max_patients=max_patients)
    t0 = time.perf_counter()
    res = run_timeorder(cohort, cfg)
    a = res.ablation
    out = {"max_patients": max_patients, "auroc_ordered": float(a.auroc_ordered),
           "auroc_shuffled": float(a.auroc_shuffled), "delta": float(a.delta),
           "delta_ci": [float(x) for x in a.delta_ci], "delta_p": float(a.delta_p),
           "evidence": a.evidence, "seconds": round(time.perf_counter() - t0, 1),
           "verdict": res.verdict}
    print(f"    timeorder max_patients={max_patients}: ordered {a.auroc_ordered:.3f} shuffled "
          f"{a.auroc_shuffled:.3f} delta {a.delta:+.3f} CI [{a.delta_ci[0]:+.3f}, {a.delta_ci[1]:+.3f}] "
          f"p={a.delta_p:.3g} ({a.evidence}) {out['seconds']} s", flush=True)
    return out


def _check(label: str, ok: bool) -> str:
    return f"{'PASS' if ok else 'FAIL'}  {label}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--full", action="store_true", help="also the full-preset GRU for seed 0 (slower)")
    ap.add_argument("--timeorder-all", action="store_true", help="also run_timeorder with every patient")
    ap.add_argument("--skip-timeorder", action="store_true")
    ap.add_argument("--skip-control", action="store_true", help="skip the order_weight=0 experiments")
    ap.add_argument("--json", default=None, help="write all numbers to this file")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    out: dict = {"patients": args.patients, "seeds": seeds}
    tmp = Path(tempfile.mkdtemp(prefix="demo_signal_"))

    t0 = time.perf_counter()
    demo.generate_demo_cohort(n_patients=args.patients, seed=0)
    out["generate_seconds"] = time.perf_counter() - t0
    paths = demo.write_demo(tmp / "w1", n_patients=args.patients, seed=0)
    out["events_bytes"] = paths["events"].stat().st_size
    out["outcomes_bytes"] = paths["outcomes"].stat().st_size
    print(f"generate {args.patients} patients: {out['generate_seconds']:.2f} s; events.parquet "
          f"{out['events_bytes'] / 1e6:.2f} MB, outcomes.csv {out['outcomes_bytes'] / 1e3:.0f} kB", flush=True)

    cohort, outcomes, truth = load_variant(args.patients, 0, 1.0, tmp / "w1")
    out["prevalence"] = float(outcomes[demo.DEMO_TARGET].mean())
    print(f"prevalence {out['prevalence']:.3f}; order=1 share {truth.order.mean():.3f}", flush=True)
    print("order flag / outcome from order-free summaries (5-fold CV):", flush=True)
    out["summaries"] = order_from_summaries(cohort, outcomes, truth)
    print("   ", {k: round(v, 3) for k, v in out["summaries"].items()}, flush=True)

    print("run_experiment quick, order_weight=1:", flush=True)
    out["quick"] = experiments(cohort, seeds)
    if args.full:
        print("run_experiment full GRU (+lr, gbm), order_weight=1, seed 0:", flush=True)
        out["full"] = experiments(cohort, [seeds[0]], preset="full")
    if not args.skip_control:
        c0, o0, _ = load_variant(args.patients, 0, 0.0, tmp / "w0")
        out["control_prevalence"] = float(o0[demo.DEMO_TARGET].mean())
        print(f"run_experiment quick, order_weight=0 (prevalence {out['control_prevalence']:.3f}):", flush=True)
        out["control"] = experiments(c0, seeds)
    if not args.skip_timeorder:
        print("run_timeorder (page default: lr+gru, 12/24/48 h, quick):", flush=True)
        out["timeorder"] = [timeorder(cohort, 2000)]
        if args.timeorder_all:
            out["timeorder"].append(timeorder(cohort, None))

    # -- acceptance ------------------------------------------------------------------------
    margins = [r["gru_minus_best_classical"] for r in out["quick"]]
    checks = [
        _check(f"generation {out['generate_seconds']:.2f} s < 2 s", out["generate_seconds"] < 2.0),
        _check(f"prevalence {out['prevalence']:.3f} in [0.15, 0.25]", 0.15 <= out["prevalence"] <= 0.25),
        _check(f"events.parquet {out['events_bytes'] / 1e6:.2f} MB < 4 MB", out["events_bytes"] < 4e6),
        _check(f"GRU - best(lr, gbm): mean {np.mean(margins):+.3f} >= 0.05 and each seed >= 0.05 "
               f"({', '.join(f'{m:+.3f}' for m in margins)})", np.mean(margins) >= 0.05 and min(margins) >= 0.05),
        _check(f"order from summaries AUROC lr {out['summaries']['order_lr']:.3f}, gbm "
               f"{out['summaries']['order_gbm']:.3f} <= 0.62",
               max(out["summaries"]["order_lr"], out["summaries"]["order_gbm"]) <= 0.62),
        _check(f"summaries-only LR test AUROC mean {np.mean([r['lr'] for r in out['quick']]):.3f} in [0.62, 0.75]",
               0.62 <= np.mean([r["lr"] for r in out["quick"]]) <= 0.75),
    ]
    if "control" in out:
        cm = [r["gru_minus_best_classical"] for r in out["control"]]
        checks.append(_check(f"order_weight=0: GRU - best(lr, gbm) mean {np.mean(cm):+.3f} <= 0.02 "
                             f"({', '.join(f'{m:+.3f}' for m in cm)})", np.mean(cm) <= 0.02))
    if "full" in out:
        m = out["full"][0]["gru_minus_best_classical"]
        checks.append(_check(f"full preset, seed {seeds[0]}: GRU - best(lr, gbm) {m:+.3f} >= 0.05", m >= 0.05))
    for t in out.get("timeorder", []):
        checks.append(_check(f"time-order ablation (max_patients={t['max_patients']}): delta {t['delta']:+.3f} "
                             f"CI [{t['delta_ci'][0]:+.3f}, {t['delta_ci'][1]:+.3f}] above 0", t["delta_ci"][0] > 0))
    out["checks"] = checks
    print("\n".join(checks))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
    return 0 if all(c.startswith("PASS") for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
