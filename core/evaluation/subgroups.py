"""Does a model work as well for every group? Metrics per subgroup of a static attribute, with intervals and counts.

TRIPOD+AI (item 23a) and every clinical reviewer ask whether a model is as good for women as for men, for the
old as for the young, in each ICU type. :func:`subgroup_metrics` splits the scored patients by each attribute
(a categorical value per group, decoded as on the timeline: ``Gender 0`` -> ``female``; a number with many values
in bands: age in the usual bands, anything else in thirds of its values) and gives per model and group the AUROC
with a 95% interval, calibration (observed / expected events and calibration-in-the-large) and sensitivity and
PPV at the model's saved threshold with intervals, with the counts. Patients with no value form an ``unknown``
group, so the groups of an attribute always add up to every scored patient. A group with fewer than
:data:`SMALL_PATIENTS` patients or :data:`SMALL_EVENTS` positive patients is marked ``small``: its interval is wide
and its point estimate unreliable.

Intervals come from a bootstrap over patients (the hours of one patient resampled together for patient-hour rows:
:class:`~core.evaluation.cluster.ClusterBootstrap`), inside each group.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.config import EvaluationConfig
from core.data.plausibility import describe_value
from core.evaluation.calibration import calibration_intercept_slope
from core.evaluation.cluster import ClusterBootstrap
from core.evaluation.metrics import evaluate

__all__ = ["subgroup_metrics", "assign_groups", "SMALL_PATIENTS", "SMALL_EVENTS", "AGE_BANDS", "COLUMNS"]

#: below this many patients, or positive patients, a group is marked small.
SMALL_PATIENTS, SMALL_EVENTS = 50, 10
#: age bands in years (lower bounds): 18-39, 40-59, 60-79, 80 and over (younger patients: "under 18").
AGE_BANDS = (18, 40, 60, 80)
#: the most distinct values an attribute may have to be grouped value by value.
_MAX_LEVELS = 8
#: columns of the table, in order (``DIR/subgroups.csv`` of ``python -m core evaluate``).
COLUMNS = ["model", "attribute", "group", "n", "n_positive", "auroc", "auroc_low", "auroc_high", "observed",
           "expected", "observed_expected", "calibration_in_the_large", "sensitivity", "sensitivity_low",
           "sensitivity_high", "ppv", "ppv_low", "ppv_high", "small"]


def _bands(values: pd.Series, name: str) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce")
    if name.lower() == "age":
        edges = [-np.inf, *AGE_BANDS, np.inf]
        labels = [f"under {AGE_BANDS[0]}"] + [f"{a}-{b - 1}" for a, b in zip(AGE_BANDS[:-1], AGE_BANDS[1:])] \
            + [f"{AGE_BANDS[-1]} and over"]
        out = pd.cut(v, edges, right=False, labels=labels).astype(object)
    else:
        cuts = np.unique(np.nanquantile(v, [1 / 3, 2 / 3])) if v.notna().any() else np.array([])
        edges = [-np.inf, *cuts, np.inf]
        labels = [f"{name} < {cuts[0]:g}"] if len(cuts) else [f"{name}: every value"]
        labels += [f"{name} {a:g} to < {b:g}" for a, b in zip(cuts[:-1], cuts[1:])]
        labels += [f"{name} >= {cuts[-1]:g}"] if len(cuts) else []
        out = pd.cut(v, edges, right=False, labels=labels[:len(edges) - 1]).astype(object)
    return out.where(v.notna(), "unknown")


def assign_groups(static: pd.DataFrame, attributes=None, codes: dict | None = None) -> pd.DataFrame:
    """The group of every patient per attribute: ``static``'s index, one text column per attribute.

    Parameters
    ----------
    static : DataFrame
        One row per patient (index: patient id), one column per static attribute.
    attributes : sequence of str, optional
        Columns to group by (default: every column).
    codes : dict, optional
        Code meanings (:func:`core.data.plausibility.codes_from_table`) replacing the built-in ones.
    """
    cols = list(static.columns) if attributes is None else [a for a in attributes]
    missing = [a for a in cols if a not in static.columns]
    if missing:
        from core.exceptions import CohortError
        raise CohortError(f"No static attribute {', '.join(map(repr, missing))} in these data to form subgroups; "
                          f"their static attributes are: {', '.join(map(str, static.columns)) or 'none'}.")
    out = {}
    for a in cols:
        v = static[a]
        levels = pd.unique(v.dropna())
        if len(levels) <= _MAX_LEVELS or not pd.api.types.is_numeric_dtype(v):
            out[a] = [("unknown" if (x is None or x != x) else
                       describe_value(a, float(x), codes) if isinstance(x, (int, float, np.number)) else str(x))
                      for x in v]
        else:
            out[a] = _bands(v, str(a)).tolist()
    return pd.DataFrame(out, index=static.index.astype(str))


def subgroup_metrics(results: dict, static: pd.DataFrame, attributes=None, codes: dict | None = None,
                     config: EvaluationConfig | None = None) -> pd.DataFrame:
    """Each model's metrics in each subgroup of each attribute (see the module docstring).

    Parameters
    ----------
    results : dict name -> EvaluationResult
        Scored patients (rows: patients, or patient-hours with ``times``), e.g. a run's test results.
    static : DataFrame
        The patients' static attributes (index: patient id); patients absent from it are ``unknown``.
    attributes : sequence of str, optional
        Default: every column of ``static``.
    codes : dict, optional
        Code meanings replacing the built-in ones.
    config : EvaluationConfig, optional
        Bootstrap resamples, confidence level and seed (default 1,000, 95%, 0).

    Returns
    -------
    DataFrame with :data:`COLUMNS`: one row per model, attribute and group (groups sorted, ``unknown`` last).
    ``n`` and ``n_positive`` count patients (a positive patient has a positive label, or a positive hour);
    the groups of an attribute add up to every scored patient.
    """
    config = config or EvaluationConfig()
    if not results:
        return pd.DataFrame(columns=COLUMNS)
    first = next(iter(results.values()))
    ids = np.asarray(first.patient_ids).astype(str)
    groups = assign_groups(static, attributes, codes).reindex(pd.Index(pd.unique(ids))).fillna("unknown")
    rows = []
    for attribute in groups.columns:
        per_row = groups[attribute].reindex(ids).to_numpy()
        levels = sorted(set(per_row) - {"unknown"}, key=str) + (["unknown"] if "unknown" in set(per_row) else [])
        for level in levels:
            mask = per_row == level
            gid = ids[mask]
            boot = ClusterBootstrap(gid, max(config.n_bootstrap, 1), config.random_state) \
                if first.times is not None else None
            for name, ev in results.items():
                y, p = np.asarray(ev.y_true)[mask], np.asarray(ev.y_proba, dtype=float)[mask]
                n_pat = int(pd.unique(gid).size)
                n_pos = int(pd.Series(y, index=gid).groupby(level=0).max().sum())
                e = evaluate(name, y, p, ev.threshold, patient_ids=gid, config=config, label=ev.label,
                             clusters=boot) if boot is not None else \
                    evaluate(name, y, p, ev.threshold, patient_ids=gid, config=config, label=ev.label)
                cal = calibration_intercept_slope(y, p)
                ci = e.ci
                rows.append({"model": ev.label or name, "attribute": str(attribute), "group": str(level), "n": n_pat,
                             "n_positive": n_pos, "auroc": e.metrics["auroc"],
                             "auroc_low": ci.get("auroc", (np.nan, np.nan))[0],
                             "auroc_high": ci.get("auroc", (np.nan, np.nan))[1],
                             "observed": float(y.mean()), "expected": float(p.mean()),
                             "observed_expected": float(y.mean() / p.mean()) if p.mean() > 0 else np.nan,
                             "calibration_in_the_large": cal["calibration_in_the_large"],
                             "sensitivity": e.metrics["sensitivity"],
                             "sensitivity_low": ci.get("sensitivity", (np.nan, np.nan))[0],
                             "sensitivity_high": ci.get("sensitivity", (np.nan, np.nan))[1],
                             "ppv": e.metrics["ppv"], "ppv_low": ci.get("ppv", (np.nan, np.nan))[0],
                             "ppv_high": ci.get("ppv", (np.nan, np.nan))[1],
                             "small": bool(n_pat < SMALL_PATIENTS or n_pos < SMALL_EVENTS)})
    return pd.DataFrame(rows, columns=COLUMNS)
