"""Bedside alarm behaviour of one model at its decision threshold (online task): :func:`alarm_metrics`."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from core.evaluation.point_metrics import check_arrays

__all__ = ["alarm_metrics", "alarm_intervals", "ALARM_CI_KEYS"]

#: the alarm metrics that get a bootstrap interval (``<key>_ci`` in metrics.json).
ALARM_CI_KEYS = ("alarmed_before_onset", "median_warning_hours", "false_alarms_per_patient_day")


def _onset_hours(v, pid, default: float) -> float:
    """A known onset as float hours; ``default`` (the first positive hour) when absent or NaN."""
    try:
        v = np.nan if v is None else float(v)
    except (TypeError, ValueError):
        raise ValueError(f"onsets[{pid!r}] must be a time in hours or NaN; got {v!r}. Example: "
                         "onsets={'p001': 12.0}.") from None
    return v if np.isfinite(v) else default


def alarm_metrics(patient_ids, times, y_true, risk, threshold: float, onsets: Mapping | None = None
                  ) -> dict[str, float]:
    """Bedside alarm behaviour of one model at its decision threshold (online task).

    Rows are the scored patient-hours, one row per patient and hour, in any order.

    Definitions:

    - An *alarm* is a scored hour with ``risk >= threshold``.
    - A *positive stay* is a patient with at least one row with ``y_true == 1``. Its *onset* is
      ``onsets[patient_id]`` (same time axis as ``times``); when that is absent or NaN, the onset is
      the time of the stay's first row with ``y_true == 1``. Onsets of other patients are ignored.
    - ``positive_stays``: number of positive stays.
    - ``alarmed_before_onset``: share of positive stays with at least one alarm at a scored hour
      ``t < onset`` (NaN when there is no positive stay).
    - ``median_warning_hours``: median, over the positive stays alarmed before onset, of onset minus
      the time of the stay's first alarm (its earliest alarm with ``t < onset``); NaN when none.
    - ``false_alarms_per_patient_day``: number of alarm hours with ``y_true == 0`` (in any stay)
      divided by the scored patient-days, i.e. the number of scored hours / 24.
    - ``alarm_hours_share``: alarm hours / scored hours.
    - ``n_patients``, ``n_hours``: distinct patients and scored hours (rows).

    Parameters
    ----------
    patient_ids : array-like (n_rows,)
        Patient of every row.
    times : array-like (n_rows,) of float
        Hour of every row (e.g. hours since admission).
    y_true : array-like (n_rows,) of 0/1
        Hourly label.
    risk : array-like (n_rows,)
        The model's risk at every row.
    threshold : float
        The model's saved decision threshold.
    onsets : mapping patient id -> float, optional
        Onset time of positive stays (dict or pandas Series); NaN or absent = unknown.

    Returns
    -------
    dict of str to float
        The keys defined above.

    Raises
    ------
    ValueError
        If the arrays differ in length, ids are missing, times are not finite, labels are not 0/1,
        or an onset is not a number.

    Examples
    --------
    >>> m = alarm_metrics(["a", "a", "a", "b", "b"], [0, 1, 2, 0, 1], [0, 0, 1, 0, 0],
    ...                   [0.2, 0.9, 0.9, 0.6, 0.1], threshold=0.5, onsets={"a": 2.0})
    >>> m["alarmed_before_onset"], m["median_warning_hours"], m["alarm_hours_share"]
    (1.0, 1.0, 0.6)
    """
    st = _per_stay(patient_ids, times, y_true, risk, threshold, onsets)
    positive, alarmed, onset, first = st["positive"], st["alarmed"], st["onset"], st["first"]
    y, alarm, uniq = st["y"], st["alarm"], st["uniq"]
    n_pos, n = int(positive.sum()), len(y)
    return {
        "positive_stays": n_pos,
        "alarmed_before_onset": float(alarmed.sum() / n_pos) if n_pos else float("nan"),
        "median_warning_hours": float(np.median(onset[alarmed] - first[alarmed])) if alarmed.any()
        else float("nan"),
        "false_alarms_per_patient_day": float(np.sum(alarm & (y == 0)) / (n / 24)),
        "alarm_hours_share": float(alarm.mean()),
        "n_patients": len(uniq),
        "n_hours": n,
    }


def _per_stay(patient_ids, times, y_true, risk, threshold: float, onsets: Mapping | None) -> dict:
    """Per-stay alarm facts (stays in ``pd.factorize`` order of ``patient_ids``) and the per-row arrays."""
    y, r = check_arrays(y_true, risk)
    ids = np.asarray(patient_ids, dtype=object).ravel()
    t = np.asarray(times, dtype=float).ravel()
    if not (len(ids) == len(t) == len(y)):
        raise ValueError(f"patient_ids, times, y_true and risk must have one value per row; got lengths "
                         f"{len(ids)}, {len(t)}, {len(y)} and {len(r)}. Pass the columns of one table of "
                         "scored patient-hours.")
    if not len(y):
        raise ValueError("alarm_metrics needs at least one scored hour; got none.")
    if not np.isfinite(t).all():
        raise ValueError(f"times must be finite hours; got {int((~np.isfinite(t)).sum())} NaN or infinite "
                         "values. Drop unscored rows before calling alarm_metrics.")
    codes, uniq = pd.factorize(ids)
    if (codes < 0).any():
        raise ValueError(f"patient_ids has {int((codes < 0).sum())} missing ids; every scored hour needs "
                         "its patient id.")
    alarm = r >= threshold
    onset = np.full(len(uniq), np.inf)
    np.minimum.at(onset, codes[y == 1], t[y == 1])          # first positive hour; inf = negative stay
    positive = np.isfinite(onset)
    for j in np.flatnonzero(positive) if onsets is not None else []:
        onset[j] = _onset_hours(onsets.get(uniq[j]), uniq[j], default=onset[j])
    early = alarm & (t < onset[codes])                       # onset is inf for negative stays ...
    early &= positive[codes]                                 # ... so keep positive stays only
    first = np.full(len(uniq), np.inf)
    np.minimum.at(first, codes[early], t[early])
    alarmed = np.isfinite(first)
    return {"uniq": uniq, "codes": codes, "y": y, "alarm": alarm, "positive": positive, "alarmed": alarmed,
            "onset": onset, "first": first}


def _weighted_median(values: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Median of ``values`` repeated by the integer weights of each row of ``W`` (NaN where a row weighs nothing)."""
    out = np.full(len(W), np.nan)
    if not values.size:
        return out
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(W[:, order], axis=1)
    total = cum[:, -1]
    ok = total > 0
    lo = np.array([np.searchsorted(c, (t + 1) // 2) for c, t in zip(cum, total)])      # the (t+1)//2-th value
    hi = np.array([np.searchsorted(c, t // 2 + 1) for c, t in zip(cum, total)])        # the (t//2+1)-th value
    lo, hi = np.minimum(lo, len(v) - 1), np.minimum(hi, len(v) - 1)
    out[ok] = np.where(total[ok] % 2 == 1, v[lo[ok]], (v[lo[ok]] + v[hi[ok]]) / 2)
    return out


def alarm_intervals(patient_ids, times, y_true, risk, threshold: float, boot, onsets: Mapping | None = None,
                    ci_level: float = 0.95) -> dict[str, list[float]]:
    """Percentile intervals of the alarm metrics over the patient resamples of ``boot``.

    Parameters
    ----------
    patient_ids, times, y_true, risk, threshold, onsets
        As :func:`alarm_metrics`.
    boot : core.evaluation.cluster.ClusterBootstrap
        Built from ``patient_ids`` (the same rows): each resample draws whole stays, so a stay's alarms and
        hours move together.
    ci_level : float

    Returns
    -------
    dict ``<key>_ci`` -> ``[low, high]`` for each of :data:`ALARM_CI_KEYS` (NaN where no resample defines it).
    """
    st = _per_stay(patient_ids, times, y_true, risk, threshold, onsets)
    # the resamples count patients in boot.patients order; bring them to this function's stay order
    C = boot.counts[:, pd.Index(boot.patients).get_indexer(st["uniq"])].astype(float)
    hours = np.bincount(st["codes"], minlength=len(st["uniq"])).astype(float)
    false = np.bincount(st["codes"], weights=(st["alarm"] & (st["y"] == 0)).astype(float), minlength=len(st["uniq"]))
    pos, alarmed = st["positive"], st["alarmed"]
    with np.errstate(invalid="ignore", divide="ignore"):
        rows = {"alarmed_before_onset": (C[:, pos] * alarmed[pos]).sum(1) / C[:, pos].sum(1),
                "median_warning_hours": _weighted_median((st["onset"] - st["first"])[alarmed], C[:, alarmed]),
                "false_alarms_per_patient_day": (C @ false) / ((C @ hours) / 24)}
    a = (1 - ci_level) / 2 * 100
    out = {}
    for k, v in rows.items():
        v = v[np.isfinite(v)]
        out[f"{k}_ci"] = [float(np.percentile(v, a)), float(np.percentile(v, 100 - a))] if len(v) else \
            [float("nan"), float("nan")]
    return out
