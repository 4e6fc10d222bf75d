"""Seeded synthetic cohorts built in code (no files, no real data), and the files a test writes them to.

``make_tiny_cohort`` is the unit tests' cohort (~40 patients x 6 hours x 3 variables + Age);
``make_planted_order_cohort`` hides the label in the order of two events; ``make_online_cohort`` has a
per-hour label. ``write_long`` and ``wide_csv`` write a cohort as an upload would arrive (long or hourly CSV).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.data.cohort import make_cohort

__all__ = ["make_tiny_cohort", "make_planted_order_cohort", "make_online_cohort", "write_long", "wide_csv"]


def make_tiny_cohort(n_patients: int = 40, n_hours: int = 6, seed: int = 0):
    """~40 patients x ``n_hours`` hours x 3 variables (HR, Temp, Lactate) + 1 static (Age).

    Risk rises with heart rate, lactate and age, so models can learn something.
    """
    rng = np.random.default_rng(seed)
    ids = [f"p{i:03d}" for i in range(n_patients)]
    sev = rng.normal(size=n_patients)
    rows = []
    for i, pid in enumerate(ids):
        for h in range(n_hours):
            t = h + rng.uniform(0, 0.9)
            rows.append((pid, t, "HR", 80 + 10 * sev[i] + rng.normal(0, 5)))
            if rng.random() < 0.6:
                rows.append((pid, t + 0.05, "Temp", 37 + 0.3 * sev[i] + rng.normal(0, 0.3)))
            if h % 3 == 0 and rng.random() < 0.7:
                rows.append((pid, t + 0.1, "Lactate", max(0.3, 1.5 + 0.8 * sev[i] + rng.normal(0, 0.4))))
    events = pd.DataFrame(rows, columns=["patient_id", "time_hours", "variable", "value"])
    age = pd.Series(60 + 10 * rng.normal(size=n_patients) + 5 * sev, index=ids)
    age.iloc[::7] = np.nan
    static = pd.DataFrame({"Age": age})
    logit = 1.5 * sev + 0.02 * (age.fillna(60).to_numpy() - 60) - 0.5
    labels = pd.Series((rng.random(n_patients) < 1 / (1 + np.exp(-logit))).astype(int), index=ids)
    labels.iloc[:4] = [0, 1, 0, 1]  # both classes guaranteed
    return make_cohort(events, static, labels, target="died")


def make_planted_order_cohort(n_patients: int = 240, seed: int = 0):
    """The label is whether event A first happened before event B; no aggregate reveals it.

    Each patient gets one A and one B at distinct random hours in [0, 6), then both every hour
    from 7 to 11 (values i.i.d. noise); use ``FeatureConfig(window_hours=12)``. Counts, values, last times and slopes have the same
    distribution in both classes; only the *order* of the first A and first B decides the label.
    """
    rng = np.random.default_rng(seed)
    rows, labels = [], {}
    for i in range(n_patients):
        pid = f"q{i:03d}"
        ta, tb = rng.choice(6, size=2, replace=False) + 0.5
        labels[pid] = int(ta < tb)
        rows.append((pid, float(ta), "A", rng.normal()))
        rows.append((pid, float(tb), "B", rng.normal()))
        for h in range(7, 12):
            rows.append((pid, h + 0.5, "A", rng.normal()))
            rows.append((pid, h + 0.5, "B", rng.normal()))
    events = pd.DataFrame(rows, columns=["patient_id", "time_hours", "variable", "value"])
    static = pd.DataFrame({"Age": rng.normal(60, 10, n_patients)}, index=list(labels))
    return make_cohort(events, static, pd.Series(labels), target="a_first")


def make_online_cohort(n_patients: int = 60, seed: int = 0, max_hours: int = 30):
    """Hourly HR / MAP (every hour) and Lactate (every 4 h) with a per-hour label (the online task).

    About a third of the patients have an event at a random hour; HR climbs and MAP falls in the 6
    hours before it, and the hours ``onset - 6 <= t < onset`` are labelled 1 (hours from onset on are
    not labelled), so an online model can learn the run-up. Stays last 10 to ``max_hours`` hours.
    """
    rng = np.random.default_rng(seed)
    rows, hours = [], []
    onsets = {}
    for i in range(n_patients):
        pid = f"o{i:03d}"
        length = int(rng.integers(10, max_hours + 1))
        onset = float(rng.integers(7, length + 3)) if i % 3 == 0 else np.nan
        onsets[pid] = onset
        for h in range(length):
            if np.isfinite(onset) and h >= onset:
                break
            run_up = max(0.0, 6 - (onset - h)) if np.isfinite(onset) else 0.0
            rows.append((pid, float(h), "HR", 80 + 4 * run_up + rng.normal(0, 4)))
            rows.append((pid, float(h), "MAP", 80 - 3 * run_up + rng.normal(0, 4)))
            if h % 4 == 0:
                rows.append((pid, float(h) + 0.5, "Lactate", 1.2 + 0.1 * run_up + abs(rng.normal(0, 0.3))))
            label = int(np.isfinite(onset) and onset - 6 <= h < onset)
            hours.append((pid, float(h), label))
    events = pd.DataFrame(rows, columns=["patient_id", "time_hours", "variable", "value"])
    hour_labels = pd.DataFrame(hours, columns=["patient_id", "time_hours", "label"])
    static = pd.DataFrame({"Age": rng.normal(60, 10, n_patients)}, index=list(onsets))
    return make_cohort(events, static, hour_labels=hour_labels, target="event", onsets=pd.Series(onsets),
                       row_times=hour_labels[["patient_id", "time_hours"]])


def write_long(cohort, folder: Path, prefix: str = "p", labels: bool = True) -> tuple[Path, Path | None]:
    """PhysioNet-2012-style long CSV (HH:MM times, static rows at 00:00) + outcomes CSV.

    Patient ids ``p...`` become ``<prefix>...``; the files are ``events_<prefix>.csv`` and, with ``labels``,
    ``outcomes_<prefix>.csv`` (column ``died``) in ``folder``: ``(events, outcomes or None)``.
    """
    ev = cohort.events.copy()
    ev["patient_id"] = ev["patient_id"].astype(str).str.replace("p", prefix)
    minutes = np.round(ev["time_hours"].to_numpy() * 60).astype(int)
    ev["time"] = [f"{m // 60:02d}:{m % 60:02d}" for m in minutes]
    st = cohort.static["Age"].fillna(-1).rename("value").reset_index()
    st["patient_id"] = st["patient_id"].str.replace("p", prefix)
    st["time"], st["variable"] = "00:00", "Age"
    rows = pd.concat([st[["patient_id", "time", "variable", "value"]],
                      ev[["patient_id", "time", "variable", "value"]].astype({"variable": str})])
    events = folder / f"events_{prefix}.csv"
    rows.to_csv(events, index=False)
    out = None
    if labels:
        out = folder / f"outcomes_{prefix}.csv"
        lab = cohort.labels.rename("died").reset_index()
        lab["patient_id"] = lab["patient_id"].str.replace("p", prefix)
        lab.to_csv(out, index=False)
    return events, out


def wide_csv(cohort, path: Path) -> pd.DataFrame:
    """An online cohort as one hourly wide CSV at ``path``: a row per labelled hour, a column per variable,
    the hour's label as ``Event`` and ``Age`` on every row; returns the written table."""
    ev = cohort.events.pivot_table(index=["patient_id", "time_hours"], columns="variable", values="value",
                                   observed=True).reset_index()
    lab = cohort.hour_labels.rename(columns={"label": "Event"})
    w = lab.merge(ev, on=["patient_id", "time_hours"], how="left").rename(columns={"time_hours": "time"})
    w["Age"] = w["patient_id"].map(cohort.static["Age"])
    w.to_csv(path, index=False)
    return w
