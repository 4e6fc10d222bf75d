"""Bedside alarm behaviour of one model at its decision threshold (online task): :func:`alarm_metrics`."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from core.evaluation.point_metrics import check_arrays

__all__ = ["alarm_metrics"]


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
