"""Inner cross-validation of hour-by-hour model settings on *training* stays only (issue 20).

Usage (from the repository root)::

    .venv/bin/python bench/tune_online.py --model gru --grid "pos_weight=30;pos_weight=5" --folds 3
    .venv/bin/python bench/tune_online.py --model gbm --grid "max_iter=300,learning_rate=0.05"

The stays are the training + validation patients of the benchmark's split (``SplitConfig(random_state=
--seed)``, as in ``bench_reference.py``); its test patients are never read. They are cut into ``--folds``
stratified folds; per fold the product's ``FeatureBuilder`` is fitted on the other folds (arrays on disk in a
fresh folder under ``--cache``, removed after the fold; every setting of a fold reads the same inputs), each setting is fitted there with the
product's ``fit_model`` and scored on the held fold's patient-hours (pooled hourly AUROC). Prints, per
setting, the mean and per-fold (per model seed) AUROC and the fit seconds, and appends them to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _grid(text: str) -> list[dict]:
    """``"a=1,b=2;a=3"`` -> ``[{"a": 1, "b": 2}, {"a": 3}]`` (``"preset"`` or ``"-"``: the preset unchanged)."""
    from bench_online import _params
    return [_params(f"m:{part}").get("m", {}) if part.strip() not in ("-", "preset") else {} for part in text.split(";")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--grid", default="-")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--only-folds", help="comma-separated fold numbers to run (default all)")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--seed", type=int, default=0, help="seed of the split and the folds")
    ap.add_argument("--model-seeds", default="0", help="comma-separated seeds of the models (each fitted once)")
    ap.add_argument("--cache", default="/tmp/chronoscope-tune")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results_tune_online.json"))
    args = ap.parse_args()
    import numpy as np
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from bench_online import load
    from core.config import FeatureConfig, SplitConfig
    from core.features import FeatureBuilder
    from core.models import registry
    from core.training.protocol import fit_model, make_model, predict_units, split_by_patient

    Path(args.cache).mkdir(parents=True, exist_ok=True)
    cohort = load("2019-online")
    splits = split_by_patient(cohort, SplitConfig(random_state=args.seed))
    ids = np.concatenate([splits["train"], splits["validation"]])          # never the test patients
    y_stay = cohort.labels.reindex(ids).to_numpy().astype(int)
    folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=args.seed).split(ids, y_stay))
    model_seeds = [int(x) for x in args.model_seeds.split(",")]
    spec = None if args.model in ("refgru", "refhgb") else registry.get(args.model)
    settings = _grid(args.grid)
    scores = {i: [] for i in range(len(settings))}
    secs = {i: [] for i in range(len(settings))}
    chosen = [int(k) for k in args.only_folds.split(",")] if args.only_folds else range(args.folds)
    for k in chosen:
        tr, te = ids[folds[k][0]], ids[folds[k][1]]
        if spec is None:                 # the plain references of bench/reference_online.py, on the same folds
            import reference_online as ref
            variables = ref.reference_variables(cohort)
            g_tr, g_te = ref.build_grid(cohort, tr, variables), ref.build_grid(cohort, te, variables)
            fit, predict = ((ref.fit_reference_gru, ref.predict_reference_gru) if args.model == "refgru" else
                            (ref.fit_reference_hgb, ref.predict_reference_hgb))
            for ms in model_seeds:
                t0 = time.perf_counter()
                model = fit(g_tr, seed=ms)
                secs[0].append(time.perf_counter() - t0)
                scores[0].append(float(roc_auc_score(ref.labels(g_te), predict(model, g_te))))
                print(f"fold {k} seed {ms} {args.model}: AUROC {scores[0][-1]:.4f} in {secs[0][-1]:.1f} s", flush=True)
            continue
        cache = Path(tempfile.mkdtemp(prefix=f"fold{k}-", dir=args.cache))
        builder = FeatureBuilder(FeatureConfig(task="online", window_hours=336.0)).fit(cohort, tr)
        fsets = {}
        for name, pids in (("tr", tr), ("te", te)):
            folder = cache / name
            folder.mkdir(parents=True, exist_ok=True)
            fsets[name] = builder.transform(cohort, pids, out_dir=folder)
        ys = {name: builder.targets(cohort, fs) for name, fs in fsets.items()}
        for i, params in enumerate(settings):
            for ms in model_seeds:
                model = make_model(spec, args.preset, ms, params, fsets["tr"])
                t0 = time.perf_counter()
                fit_model(model, spec, fsets["tr"], ys["tr"])
                secs[i].append(time.perf_counter() - t0)
                p = predict_units(model, spec.input_kind, fsets["te"])
                scores[i].append(float(roc_auc_score(ys["te"], p)))
                print(f"fold {k} seed {ms} {params or 'preset'}: AUROC {scores[i][-1]:.4f} in {secs[i][-1]:.1f} s",
                      flush=True)
        del fsets
        shutil.rmtree(cache, ignore_errors=True)
    out = Path(args.out)
    runs = json.loads(out.read_text()) if out.exists() else []
    print()
    for i, params in enumerate(settings):
        print(f"{args.model} {params or 'preset'}: mean AUROC {np.mean(scores[i]):.4f} "
              f"folds {[round(s, 4) for s in scores[i]]}, fit {np.mean(secs[i]):.1f} s")
        runs.append({"model": args.model, "preset": args.preset, "params": params, "folds": args.folds,
                     "model_seeds": model_seeds,
                     "fold_ids": list(chosen), "seed": args.seed, "auroc": [round(s, 4) for s in scores[i]],
                     "auroc_mean": round(float(np.mean(scores[i])), 4), "fit_seconds": round(float(np.mean(secs[i])), 1)})
    out.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
