"""Benchmark: the product's hour-by-hour models beside two plain references, in one run (issue 20).

Usage (from the repository root)::

    .venv/bin/python bench/bench_reference.py                        # all eight models + both references
    .venv/bin/python bench/bench_reference.py --models gru,gbm --no-product   # references only
    .venv/bin/python bench/bench_reference.py --params "gru:hidden_size=64"

On the PhysioNet 2019 data (``../shared``), one split by patient (the product's own 70/15/15, ``--seed``):
the product trains its models with the protocol (``--preset``, default quick) and the references of
``bench/reference_online.py`` are trained on the same training patients and scored on the same test
patient-hours. Prints hourly AUROC and AUPRC (pooled over test patient-hours), fit seconds and the peak
resident memory during each fit, then the issue's targets, and appends the result to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


class PeakMemory:
    """Resident memory sampled every 20 ms in a thread; :meth:`reset` starts a new peak."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def now_mb() -> float:
        from bench_online import _now_mb
        return _now_mb()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.now_mb())

    def reset(self) -> float:
        out, self.peak = self.peak, self.now_mb()
        return out

    def stop(self) -> None:
        self._stop.set()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lr,svm,rf,gbm,rnn,lstm,gru,grud")
    ap.add_argument("--preset", choices=["test", "quick", "full"], default="quick")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--params", help='extra model parameters, e.g. "gru:hidden_size=64"')
    ap.add_argument("--no-product", action="store_true", help="references only")
    ap.add_argument("--no-reference", action="store_true", help="the product only")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results_reference.json"))
    args = ap.parse_args()
    from sklearn.metrics import average_precision_score, roc_auc_score

    import reference_online as ref
    from bench_online import _params, load
    from core.config import FeatureConfig, SplitConfig
    from core.training.protocol import split_by_patient

    mem = PeakMemory()
    t0 = time.perf_counter()
    cohort = load("2019-online")
    print(f"loaded {len(cohort.labels):,} stays in {time.perf_counter() - t0:.1f} s", flush=True)
    split = SplitConfig(random_state=args.seed)
    splits = split_by_patient(cohort, split)
    rows, result = {}, {"seed": args.seed, "preset": args.preset, "note": args.note, "params": _params(args.params),
                        "cpus": os.cpu_count(), "n_patients": {k: int(len(v)) for k, v in splits.items()}}

    if not args.no_product:
        from core.models import registry
        from core.training.protocol import run_protocol
        features = FeatureConfig(task="online", window_hours=336.0)
        peaks, current = {}, [None]

        def progress(msg, frac):
            name, _, rest = msg.partition(": ")
            if rest == "training":
                mem.reset()
                current[0] = name
            elif rest.startswith("done in") and current[0] == name:
                peaks[name] = mem.peak
            if rest == "training" or rest.startswith("done in") or msg.startswith("building"):
                print(f"  {time.perf_counter() - t1:7.1f} s  {msg}", flush=True)

        mem.reset()
        t1 = time.perf_counter()
        specs = [registry.get(n) for n in args.models.split(",")]
        res = run_protocol(cohort, specs, splits, features=features, preset=args.preset, random_state=args.seed,
                           model_params=result["params"], progress=progress)
        result["product_seconds"] = round(time.perf_counter() - t1, 1)
        result["product_peak_mb"] = round(max([mem.reset(), *peaks.values()]), 0)
        for n, ev in res.test.items():
            rows[n] = {"auroc": float(ev.metrics["auroc"]), "auprc": float(ev.metrics["auprc"]),
                       "fit_seconds": res.train_seconds[n], "peak_mb": peaks.get(n, float("nan"))}
        result["n_test_hours_product"] = int(len(res.features["test"].unit_ids)) if res.features else None
        del res

    if not args.no_reference:
        variables = ref.reference_variables(cohort)
        train = ref.build_grid(cohort, splits["train"], variables)
        test = ref.build_grid(cohort, splits["test"], variables)
        y = ref.labels(test)
        result["n_test_hours_reference"] = int(len(y))
        for name, fit, predict in (("reference GRU", ref.fit_reference_gru, ref.predict_reference_gru),
                                   ("reference HGB", ref.fit_reference_hgb, ref.predict_reference_hgb)):
            mem.reset()
            t2 = time.perf_counter()
            model = fit(train, seed=args.seed)
            secs = time.perf_counter() - t2
            p = predict(model, test)
            rows[name] = {"auroc": float(roc_auc_score(y, p)), "auprc": float(average_precision_score(y, p)),
                          "fit_seconds": secs, "peak_mb": mem.reset()}
            print(f"  {name}: fit {secs:.1f} s, AUROC {rows[name]['auroc']:.4f}", flush=True)
    mem.stop()

    print(f"\n{'model':16s} {'AUROC':>7s} {'AUPRC':>7s} {'fit s':>7s} {'peak MB':>8s}")
    for n, r in rows.items():
        print(f"{n:16s} {r['auroc']:7.4f} {r['auprc']:7.4f} {r['fit_seconds']:7.1f} {r['peak_mb']:8.0f}")
    if "product_seconds" in result:
        print(f"product, all {len(args.models.split(','))} models: {result['product_seconds']} s wall after loading, "
              f"peak {result['product_peak_mb']:.0f} MB (targets: <= 90 s, <= 2,048 MB)")
    _targets(rows)
    result["rows"] = {n: {k: round(v, 4) for k, v in r.items()} for n, r in rows.items()}
    out = Path(args.out)
    runs = json.loads(out.read_text()) if out.exists() else []
    runs.append(result)
    out.write_text(json.dumps(runs, indent=1))


def _targets(rows: dict) -> None:
    from core.models import registry
    names = [n for n in rows if not n.startswith("reference")]
    rec = [n for n in names if registry.get(n).family == "recurrent"]
    cls = [n for n in names if registry.get(n).family == "classical"]
    g, h = rows.get("reference GRU"), rows.get("reference HGB")
    print()
    if g and rec:
        best = max(rec, key=lambda n: rows[n]["auroc"])
        ok = rows[best]["auroc"] >= g["auroc"]
        print(f"best recurrent {best} {rows[best]['auroc']:.4f} >= reference GRU {g['auroc']:.4f}: {'met' if ok else 'MISSED'}")
    if g and "gru" in rows:
        d = rows["gru"]["auroc"] - g["auroc"]
        print(f"product GRU - reference GRU = {d:+.4f} (target >= -0.005): {'met' if d >= -0.005 else 'MISSED'}")
    if h and cls:
        best = max(cls, key=lambda n: rows[n]["auroc"])
        ok = rows[best]["auroc"] >= h["auroc"]
        print(f"best classical {best} {rows[best]['auroc']:.4f} >= reference HGB {h['auroc']:.4f}: {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
