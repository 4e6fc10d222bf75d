"""Two runs side by side: each model of one run against the same model of the other, on their common test patients.

Quick vs full preset, with vs without a variable, one seed vs another: two runs answer "did it change anything?"
only when they are compared on the *same* patients, paired. :func:`compare_runs` takes the test rows both runs
scored (the same patients; for online runs the same patient-hours), checks that their labels agree, and for each
model the two runs share compares run B's risks with run A's: the AUROC difference with a 95% interval and a
p-value (DeLong for stays; a paired bootstrap over patients for patient-hours, whose hours are not independent),
then Holm-adjusts the p-values over the models (:func:`core.evaluation.multiplicity.holm`).

Runs trained on the same data with the same seed share their split, so every test patient is common. Runs with
other seeds or other data share only the patients that happened to be test patients in both; the result says how
many, and refuses when there are none.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.config import EvaluationConfig
from core.evaluation.metrics import ClusterBootstrap, compare, evaluate
from core.evaluation.multiplicity import holm
from core.exceptions import RunError
from core.models import registry

__all__ = ["RunPair", "compare_runs"]


@dataclass(frozen=True)
class RunPair:
    """The paired comparison of run B against run A.

    Attributes
    ----------
    run_a, run_b : str
        Run names.
    online : bool
        Rows are patient-hours.
    n_patients : int
        Test patients both runs scored.
    n_rows : int
        Rows compared per model (patients, or patient-hours).
    n_test_a, n_test_b : int
        Test patients of each run.
    same_data : bool
        Both runs were trained on data with the same fingerprint.
    table : DataFrame
        One row per model both runs have: ``model`` (its label), ``auroc A``, ``auroc B``, ``difference``
        (B minus A), ``ci low``, ``ci high``, ``p``, ``p (Holm)``, ``verdict``.
    """

    run_a: str
    run_b: str
    online: bool
    n_patients: int
    n_rows: int
    n_test_a: int
    n_test_b: int
    same_data: bool
    table: pd.DataFrame

    def sentence(self) -> str:
        """What was compared, in words."""
        unit = f"{self.n_rows:,} test patient-hours of {self.n_patients:,} patients" if self.online else \
            f"{self.n_patients:,} test patients"
        share = "" if self.n_patients == min(self.n_test_a, self.n_test_b) else \
            (f" (of {self.n_test_a:,} and {self.n_test_b:,}: the runs split their patients differently, so only "
             "the patients that were test patients in both are compared)")
        data = "" if self.same_data else " The two runs were trained on different data (their fingerprints differ)."
        return (f"Run {self.run_b} against run {self.run_a} on the {unit} both runs scored{share}. Differences are "
                f"B minus A; p-values Holm-adjusted over the {len(self.table)} model(s).{data}")


def _test_rows(run) -> pd.DataFrame:
    p = run.predictions
    if p is None or not len(p) or "split" not in p.columns:
        raise RunError(f"Run {run.name} keeps no test predictions, so it cannot be compared with another run. "
                       "Train it again (Compare models, or python -m core train).")
    return p[p["split"] == "test"]


def compare_runs(run_a, run_b, config: EvaluationConfig | None = None) -> RunPair:
    """Each model run A and run B share, B against A, on their common test patients (see the module docstring).

    Parameters
    ----------
    run_a, run_b : core.runs.store.Run
        Two reopened runs of the same task shape.
    config : EvaluationConfig, optional
        Bootstrap resamples, confidence level and seed (default: 1,000 resamples, 95%, seed 0).

    Returns
    -------
    RunPair

    Raises
    ------
    RunError
        The runs predict different things (task shape), share no model or no test patient, or their labels
        disagree on a common test patient (another outcome).
    """
    config = config or EvaluationConfig()
    if run_a.online != run_b.online:
        raise RunError(f"Run {run_a.name} predicts {'every hour' if run_a.online else 'once per stay'} and run "
                       f"{run_b.name} {'every hour' if run_b.online else 'once per stay'}: their metrics are not "
                       "comparable. Pick two runs of the same task shape.")
    models = [m for m in run_a.models if m in run_b.models]
    if not models:
        raise RunError(f"Runs {run_a.name} and {run_b.name} have no model in common "
                       f"({', '.join(run_a.models)} / {', '.join(run_b.models)}); train the same model in both.")
    a, b = _test_rows(run_a), _test_rows(run_b)
    keys = ["patient_id", "time"] if run_a.online else ["patient_id"]
    ua = a[a["model"] == models[0]][keys + ["y_true"]]
    ub = b[b["model"] == models[0]][keys + ["y_true"]]
    common = ua.merge(ub, on=keys, suffixes=(" A", " B"))
    if not len(common):
        raise RunError(f"Runs {run_a.name} and {run_b.name} share no test patient: they were trained on other data "
                       "or split otherwise. Train both on the same data with the same seed to compare them.")
    differ = common["y_true A"].to_numpy() != common["y_true B"].to_numpy()
    if differ.any():
        ids = list(dict.fromkeys(common.loc[differ, "patient_id"].astype(str)))
        raise RunError(f"Runs {run_a.name} and {run_b.name} give {len(ids):,} common test patient(s) different labels "
                       f"(e.g. {', '.join(ids[:5])}): they predict different outcomes, so their metrics cannot be "
                       "paired. Compare runs of the same target.")
    if common["y_true A"].nunique() < 2:
        raise RunError(f"The {common['patient_id'].nunique():,} test patient(s) runs {run_a.name} and {run_b.name} share "
                       "all have the same outcome, so no AUROC can be compared on them. Compare runs split alike "
                       "(the same data and seed).")
    common = common[keys].sort_values(keys, kind="stable").reset_index(drop=True)
    # patient-hours are never tested as independent rows: a bootstrap over patients even when config asks for none
    clusters = ClusterBootstrap(common["patient_id"].astype(str).to_numpy(), config.n_bootstrap or 1000,
                                config.random_state) if run_a.online else None
    rows = []
    for name in models:
        evs = []
        for run, frame in ((run_a, a), (run_b, b)):
            d = common.merge(frame[frame["model"] == name], on=keys, how="left")
            y = d["y_true"].to_numpy(dtype=int)
            evs.append(evaluate(name, y, d["risk"].to_numpy(dtype=float), float(run.thresholds[name]),
                                patient_ids=d["patient_id"].astype(str).to_numpy(),
                                config=EvaluationConfig(n_bootstrap=0), label=registry.get(name).label,
                                times=d["time"].to_numpy(dtype=float) if run_a.online else None))
        c = compare(evs[1], evs[0], config, clusters=clusters)
        p = c.p_bootstrap if run_a.online else c.p_delong
        rows.append({"model": registry.get(name).label, "auroc A": evs[0].metrics["auroc"],
                     "auroc B": evs[1].metrics["auroc"], "difference": c.difference, "ci low": c.ci_low,
                     "ci high": c.ci_high, "p": p})
    table = pd.DataFrame(rows)
    table["p (Holm)"] = holm(table["p"].to_numpy(dtype=float))
    table["verdict"] = [("not testable" if not np.isfinite(ph) else
                         f"B is significantly {'better' if d > 0 else 'worse'}" if ph < 0.05 else
                         "no significant difference") for d, ph in zip(table["difference"], table["p (Holm)"])]
    n_pat = int(common["patient_id"].nunique())
    return RunPair(run_a.name, run_b.name, bool(run_a.online), n_pat, len(common),
                   int(a["patient_id"].nunique()), int(b["patient_id"].nunique()),
                   str(run_a.config.get("fingerprint", "")) == str(run_b.config.get("fingerprint", "")), table)
