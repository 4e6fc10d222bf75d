"""Descriptive statistics of a cohort for the Cohort and Patient-timeline pages.

Every function takes a :class:`~core.data.cohort.Cohort` and returns a small DataFrame (or dict)
ready to plot; nothing here fits a model or looks at labels except to *split* a
description by outcome.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.data.cohort import Cohort

__all__ = ["coverage_by_variable", "cohort_overview", "missingness_by_hour", "sampling_intervals", "sequence_lengths",
           "per_patient_summary", "find_patients", "default_timeline_variables", "label_windows"]


def cohort_overview(cohort: Cohort) -> dict[str, object]:
    """Headline numbers: patients, labelled, positives, prevalence (of stays), events, variables, stay length; for
    an online cohort also the labelled and positive hours and the per-hour prevalence (``hourly_prevalence``)."""
    ev = cohort.events
    span = ev.groupby("patient_id", observed=True)["time_hours"].max() if len(ev) else pd.Series(dtype=float)
    out: dict[str, object] = {
        "patients": cohort.n_patients,
        "events": int(len(ev)),
        "time_series_variables": len(cohort.series_variables),
        "static_attributes": len(cohort.static_variables),
        "median_stay_hours": float(span.median()) if len(span) else float("nan"),
        "median_events_per_patient": float(ev.groupby("patient_id", observed=True).size().median()) if len(ev) else 0.0,
    }
    if cohort.labels is not None:
        ids = cohort.labelled_ids
        out.update({"target": cohort.target, "labelled": int(len(ids)),
                    "positives": int(cohort.labels.loc[ids].sum()) if len(ids) else 0,
                    "prevalence": cohort.prevalence})
    if cohort.hour_labels is not None and len(cohort.hour_labels):
        # online task: the models predict every hour, so the rate that matters is per hour, not per stay
        hl = cohort.hour_labels["label"].to_numpy()
        out.update({"labelled_hours": int(hl.size), "positive_hours": int(hl.sum()),
                    "hourly_prevalence": float(hl.mean())})
    return out


def missingness_by_hour(cohort: Cohort, max_hours: float = 48.0, bin_hours: float = 1.0) -> pd.DataFrame:
    """Fraction of patients with at least one observation of each variable in each time bin.

    Returns a DataFrame (index = variable, columns = bin start hour), values in [0, 1].
    """
    ev = cohort.events
    keep = (ev["time_hours"] < max_hours).to_numpy()
    n = max(cohort.n_patients, 1)
    n_bins = int(np.ceil(max_hours / bin_hours))
    variables = ev["variable"].cat.categories
    # (variable, bin, patient) as one integer: the distinct triples are a hash of ints, not a frame
    # de-duplication (16,000 stays: 2.5 s -> a fraction of a second).
    v = ev["variable"].cat.codes.to_numpy()[keep].astype(np.int64)
    b = np.floor(ev["time_hours"].to_numpy()[keep] / bin_hours).astype(np.int64)
    p = ev["patient_id"].cat.codes.to_numpy()[keep].astype(np.int64)
    n_p = len(ev["patient_id"].cat.categories) + 1
    triples = pd.unique((v * n_bins + b) * n_p + p)
    cells = np.bincount(triples // n_p, minlength=len(variables) * n_bins).reshape(len(variables), n_bins)
    table = pd.DataFrame(cells / n, index=pd.Index([str(x) for x in variables], name="variable"),
                         columns=[c * bin_hours for c in range(n_bins)])
    table = table.loc[np.bincount(v, minlength=len(variables)) > 0]
    return table.loc[[x for x in variable_order(cohort) if x in table.index]]


def sampling_intervals(cohort: Cohort) -> pd.DataFrame:
    """Per variable: median and 90th-percentile hours between consecutive observations of a patient."""
    ev = cohort.events
    # Events are sorted by patient, then time: a stable sort on (patient, variable) codes keeps each
    # series in time order (no sort of the times, no text: 16,000 stays 6 s -> under a second).
    v = ev["variable"].cat.codes.to_numpy().astype(np.int64)
    p = ev["patient_id"].cat.codes.to_numpy().astype(np.int64)
    order = np.argsort(p * (len(ev["variable"].cat.categories) + 1) + v, kind="stable")
    v, p, t = v[order], p[order], ev["time_hours"].to_numpy()[order]
    same = np.r_[False, (p[1:] == p[:-1]) & (v[1:] == v[:-1])]
    frame = pd.DataFrame({"v": v[same], "gap": np.r_[np.nan, np.diff(t)][same]})
    g = frame.groupby("v")["gap"]
    out = pd.DataFrame({"median_hours": g.median(), "p90_hours": g.quantile(0.9), "n_intervals": g.size()})
    out.index = pd.Index([str(ev["variable"].cat.categories[i]) for i in out.index], name="variable")
    order = {v: i for i, v in enumerate(variable_order(cohort))}
    out = out.reset_index()
    return out.assign(_o=out["variable"].map(order)).sort_values("_o", kind="stable").drop(columns="_o").reset_index(
        drop=True)


def sequence_lengths(cohort: Cohort) -> pd.DataFrame:
    """Per patient: number of events, distinct hours with data, last observation time, outcome."""
    ev = cohort.events
    g = ev.groupby("patient_id", observed=True)
    out = pd.DataFrame({
        "n_events": g.size(),
        "hours_with_data": ev.assign(h=np.floor(ev["time_hours"])).groupby("patient_id", observed=True)["h"].nunique(),
        "last_hour": g["time_hours"].max(),
    })
    out.index = out.index.astype(str)
    if cohort.labels is not None:
        out["outcome"] = cohort.labels.reindex(out.index).map({0: "negative", 1: "positive"}).fillna("unlabelled")
    return out


def per_patient_summary(cohort: Cohort, variable: str, stat: str = "mean") -> pd.DataFrame:
    """One value per patient (``mean``, ``min``, ``max``, ``first`` or ``last``) of a variable, with outcome.

    Static attributes are returned as they are. Returns columns ``patient_id, value, outcome``.
    """
    if variable in cohort.static.columns and variable not in cohort.series_variables:
        vals = cohort.static[variable].dropna()
    else:
        ev = cohort.events
        sub = ev[ev["variable"] == variable]
        vals = sub.groupby("patient_id", observed=True)["value"].agg(stat)
        vals.index = vals.index.astype(str)
    out = pd.DataFrame({"patient_id": vals.index, "value": vals.to_numpy()})
    if cohort.labels is not None:
        out["outcome"] = out["patient_id"].map(cohort.labels).map({0: "negative", 1: "positive"}).fillna("unlabelled")
    else:
        out["outcome"] = "unlabelled"
    return out


def find_patients(cohort: Cohort, query: str = "", outcome: str = "all", limit: int | None = 500) -> list[str]:
    """Patient ids containing ``query`` (case-insensitive), filtered by outcome (all/positive/negative);
    at most ``limit`` (``None``: all)."""
    ids = pd.Series(cohort.patient_ids)
    if query:
        ids = ids[ids.str.contains(query.strip(), case=False, regex=False)]
    if outcome != "all" and cohort.labels is not None:
        want = 1 if outcome == "positive" else 0
        ids = ids[ids.map(cohort.labels).eq(want).to_numpy()]
    return (ids if limit is None else ids.head(limit)).tolist()


#: the most patient ids a picker sends to the browser (every set at hand, 2019's 6,490 stays included, fits).
PICKER_WINDOW = 10_000


def patient_window(ids: list[str], current: str, size: int = PICKER_WINDOW) -> list[str]:
    """At most ``size`` of ``ids`` around ``current`` (in list order), for a picker that stays quick with
    100,000 patients: the browser gets a window, the search box narrows the list, Previous/Next walk all."""
    if len(ids) <= size:
        return list(ids)
    try:
        i = ids.index(current)
    except ValueError:
        i = 0
    lo = min(max(0, i - size // 2), len(ids) - size)
    return list(ids[lo:lo + size])


def step_patient(ids: list[str], current: str, k: int) -> str:
    """The id ``k`` places after ``current`` in ``ids`` (wrapping around); the first id if ``current`` is not listed."""
    try:
        i = ids.index(current)
    except ValueError:
        return ids[0]
    return ids[(i + k) % len(ids)]


def default_timeline_variables(cohort: Cohort, patient_id: str, n: int = 7) -> list[str]:
    """The panels a timeline opens with: the patient's most observed vital signs (up to ``n - 3``) and
    laboratory values (up to 3, so labs are never crowded out by hourly vitals), filled up to ``n`` with
    the other most observed variables; vitals first, then labs, then the rest."""
    from core.data.plausibility import group_of
    ev = cohort.patient_events(patient_id)
    counts = ev["variable"].astype(str).value_counts()
    vitals = [v for v in counts.index if group_of(v) == "vital"][:max(n - 3, 1)]
    labs = [v for v in counts.index if group_of(v) == "lab"][:3]
    chosen = vitals + labs
    rest = [v for v in counts.index if v not in chosen][:max(n - len(chosen), 0)]
    return (chosen + rest)[:n]


def label_windows(cohort: Cohort, patient_id: str) -> list[tuple[float, float]]:
    """Online task: the patient's runs of positive hours as ``(start, end)`` hours, for shading a timeline.

    A run covers consecutive labelled hours with label 1; it ends where the next labelled hour is 0 or
    at its last hour + 1. Empty for a stay-task cohort or a patient without positive hours.
    """
    if cohort.hour_labels is None:
        return []
    hl = cohort.hour_labels[cohort.hour_labels["patient_id"] == str(patient_id)].sort_values("time_hours")
    out: list[tuple[float, float]] = []
    t, y = hl["time_hours"].to_numpy(dtype=float), hl["label"].to_numpy()
    start = None
    for i in range(len(t)):
        if y[i] == 1 and start is None:
            start = t[i]
        if start is not None and (y[i] == 0 or i == len(t) - 1):
            out.append((float(start), float(t[i] if y[i] == 0 else t[i] + 1.0)))
            start = None
    return out


def coverage_by_variable(cohort) -> pd.DataFrame:
    """One row per variable, counted once: the share of patients with at least one value of it, as a time
    series or as a static attribute (a variable that is both, e.g. Weight, is ``kind="both"``).

    Columns: ``variable, unit, kind, n_patients, coverage`` (in [0, 1]), in :func:`variable_order`.
    """
    from core.data.plausibility import unit_of
    n = max(len(cohort.patient_ids), 1)
    ev = cohort.events
    series = {str(v): set(map(str, g.unique())) for v, g in ev.groupby("variable", observed=True)["patient_id"]} \
        if len(ev) else {}
    static = {str(c): set(cohort.static.index[cohort.static[c].notna()].astype(str)) for c in cohort.static.columns}
    rows = []
    for var in sorted(set(series) | set(static)):
        have = series.get(var, set()) | static.get(var, set())
        kind = "both" if var in series and var in static else ("time series" if var in series else "static")
        rows.append({"variable": var, "unit": unit_of(var), "kind": kind, "n_patients": len(have),
                     "coverage": len(have) / n})
    frame = pd.DataFrame(rows, columns=["variable", "unit", "kind", "n_patients", "coverage"])
    return frame.sort_values(["coverage", "variable"], ascending=[False, True], kind="stable").reset_index(drop=True)


def variable_order(cohort) -> list[str]:
    """The one order every Cohort chart lists variables in: most covered first (share of patients with a
    value, time series and static counted once), ties by name."""
    return coverage_by_variable(cohort)["variable"].tolist()
