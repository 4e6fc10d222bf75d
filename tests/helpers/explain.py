"""A seeded cohort with one planted signal for the explanation tests (built in code, nothing committed).

The outcome depends only on ``Lactate`` in hours 4-7 (the planted window); ``HR``, ``MAP`` and
``Temp`` and Lactate before hour 4 are noise. Every variable is observed every hour.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.data.cohort import make_cohort
from core.config import FeatureConfig
from core.features import FeatureBuilder
from core.training.protocol import FittedRun

__all__ = ["SIGNAL", "WINDOW", "HOURS", "planted_cohort", "fitted_run"]

SIGNAL, WINDOW = "Lactate", (4, 8)
HOURS = 8


def planted_cohort(n: int = 240, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f"p{i:03d}" for i in range(n)]
    y = np.arange(n) % 2
    rng.shuffle(y)
    rows = []
    for i, pid in enumerate(ids):
        for h in range(HOURS):
            lac = rng.normal(2.0, 0.5) + (2.0 if (y[i] and WINDOW[0] <= h < WINDOW[1]) else 0.0)
            rows += [(pid, float(h), "HR", rng.normal(80, 10)), (pid, float(h), "MAP", rng.normal(75, 8)),
                     (pid, float(h), "Temp", rng.normal(37, 0.4)), (pid, float(h), SIGNAL, lac)]
    ev = pd.DataFrame(rows, columns=["patient_id", "time_hours", "variable", "value"])
    static = pd.DataFrame({"Age": rng.normal(60, 10, n)}, index=pd.Index(ids, name="patient_id"))
    return make_cohort(ev, static, pd.Series(y, index=ids), target="died")


def fitted_run(cohort, models: dict, n_train: int = 160):
    """A :class:`core.training.protocol.FittedRun` with ``models`` fitted on the first patients."""
    ids = cohort.labelled_ids
    train, test = ids[:n_train], ids[n_train:]
    fb = FeatureBuilder(FeatureConfig(window_hours=HOURS)).fit(cohort, train)
    fs = fb.transform(cohort, train)
    y = cohort.labels.loc[train].to_numpy()
    fitted = {}
    for name, model in models.items():
        X = fs.X_seq if hasattr(model, "predict_proba_over_time") else fs.X_tab
        fitted[name] = model.fit(X, y)
    return FittedRun(builder=fb, models=fitted, splits={"train": train, "validation": test[:0], "test": test})
