"""Before/after check of the one training protocol: the same numbers from every analysis that uses it.

Usage (from the repository root)::

    CHRONOSCOPE_THREADS=1 .venv/bin/python bench/bench_protocol.py [--out FILE.json]

Runs, with fixed seeds and one thread (so results do not depend on machine load):

* ``run_experiment`` on the demo cohort and on PhysioNet 2012 set A (``lr, gbm, gru``, quick preset):
  test AUROC/AUPRC and their CIs, thresholds, the reference model;
* ``cross_validate`` (3 folds, ``lr, gru``, quick) on the demo;
* ``run_timeorder`` on 600 demo patients (``lr, gru``, horizons 12 and 48 h, one seed);
* ``fit_gate_models`` (GRU, 300 demo patients, 3 epochs).

Prints the numbers as JSON (and writes ``--out``), so two commits can be diffed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SETA = ROOT.parent / "shared" / "data" / "physionet2012"


def _r(v) -> float | None:
    v = float(v)
    return round(v, 6) if v == v else None


def _experiment(cohort) -> dict:
    from core.training.experiment import run_experiment
    res = run_experiment(cohort, ["lr", "gbm", "gru"], preset="quick", random_state=0)
    out = {"reference": res.reference}
    for name, ev in res.test.items():
        out[name] = {"auroc": _r(ev.metrics["auroc"]), "auprc": _r(ev.metrics["auprc"]),
                     "auroc_ci": [_r(x) for x in ev.ci["auroc"]], "threshold": _r(ev.threshold),
                     "min_se_ppv": _r(ev.metrics["min_se_ppv"])}
    out["comparisons"] = [c.sentence for c in res.comparisons]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="JSON file to write")
    args = ap.parse_args()
    from core.config import DataConfig, EvaluationConfig
    from core.training.experiment import cross_validate
    from core.analysis.gates import fit_gate_models
    from core.data.ingest import load_cohort
    from core.analysis.timeorder import TimeOrderConfig, run_timeorder
    t0 = time.perf_counter()
    demo = load_cohort(ROOT / "data" / "demo" / "events.parquet", ROOT / "data" / "demo" / "outcomes.csv",
                       config=DataConfig(target="in_hospital_death"))
    out: dict = {"demo_experiment": _experiment(demo)}
    cv = cross_validate(demo, ["lr", "gru"], preset="quick", n_folds=3, random_state=0)
    out["demo_cv"] = {f"{r.model}/{r.fold}": [_r(r.auroc), _r(r.auprc)] for r in cv.itertuples()}
    to = run_timeorder(demo, TimeOrderConfig(models=("lr", "gru"), horizons_hours=(12, 48), max_patients=600,
                                             sequence_params=(), evaluation=EvaluationConfig(n_bootstrap=200)))
    out["demo_timeorder"] = {"ablation": [_r(to.ablation.auroc_ordered), _r(to.ablation.auroc_shuffled),
                                          _r(to.ablation.auroc_shuffled_test), [_r(x) for x in to.ablation.delta_ci]],
                             "horizons": [[r.model, r.hours, _r(r.auroc), _r(r.auroc_low), _r(r.validation_auroc)]
                                          for r in to.horizons.itertuples()],
                             "gap": None if to.gap is None else [_r(to.gap.difference), _r(to.gap.ci_low)]}
    g = fit_gate_models(demo, cells=("gru",), max_patients=300, max_epochs=3)
    out["demo_gates"] = {k: _r(v) for k, v in g.test_auroc.items()}
    if (SETA / "set-a.csv.gz").exists():
        seta = load_cohort(SETA / "set-a.csv.gz", SETA / "outcomes-a.csv", config=DataConfig(target="in_hospital_death"))
        out["seta_experiment"] = _experiment(seta)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
