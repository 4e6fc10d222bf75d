"""Decision curves: the net benefit of acting on a model's risk, over a range of threshold probabilities.

At a threshold probability ``pt`` a clinician acts (treats, alarms, reviews) when the risk is at least
``pt``; choosing ``pt`` says how many false positives one true positive is worth (``pt / (1 - pt)``
false positives per true positive; Vickers & Elkin 2006). The net benefit of a model at ``pt`` is::

    NB(pt) = TP / n  -  FP / n * pt / (1 - pt)

with TP and FP counted among the rows whose risk is ``>= pt`` (the same rule as the saved decision
threshold). Two references come with every curve: *treat all* (act on every row),
``prevalence - (1 - prevalence) * pt / (1 - pt)``, and *treat none*, 0. A model is useful at ``pt``
where its curve lies above both.

What a row is. For a stay run a row is a patient (one risk per stay). For an **online** run a row is a
**patient-hour**: TP and FP count hours, ``n`` is the number of scored hours, and the net benefit is
per patient-hour assessed. The hours of one patient are correlated, so the optional confidence band of
an online run comes from a bootstrap over *patients* (:class:`core.evaluation.metrics.ClusterBootstrap`), as
every other interval of an online run; a stay run resamples patients with
:func:`core.evaluation.metrics.bootstrap_indices`.

Why our own code and not the ``dcurves`` package: these are a few vectorised lines, and ``dcurves``
pulls lifelines, statsmodels and matplotlib into the app at run time (and caps pandas through
lifelines). ``tests/core/evaluation/test_decision.py`` checks this module against ``dcurves.dca`` and against a
hand computation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.evaluation.metrics import ClusterBootstrap, bootstrap_indices

__all__ = ["DecisionCurves", "net_benefit", "treat_all", "threshold_grid", "decision_curves", "curves_from_results",
           "default_thresholds", "DEFAULT_THRESHOLDS", "HOW_TO_READ"]

#: one sentence for a page or a report on how to read the curves.
HOW_TO_READ = ("Each curve is a model's net benefit (true positives minus false positives weighted by pt/(1-pt), per "
               "row) if everyone with a risk at or above the threshold probability pt were acted on; pick the pt at "
               "which you would act (e.g. 0.1 = one true case is worth nine needless actions), and a model helps "
               "there only where its curve lies above both treat all (dashed) and treat none (zero).")

#: the default threshold probabilities: 0.01, 0.02, ..., 0.99.
DEFAULT_THRESHOLDS = np.round(np.arange(1, 100) / 100.0, 2)


def threshold_grid(low: float = 0.01, high: float = 0.99, step: float = 0.01) -> np.ndarray:
    """Threshold probabilities ``low, low + step, ..., high`` (inclusive, rounded to 6 decimals).

    Raises
    ------
    ValueError
        Unless ``0 <= low <= high < 1`` and ``step > 0``.

    Examples
    --------
    >>> threshold_grid(0.05, 0.2, 0.05)
    array([0.05, 0.1 , 0.15, 0.2 ])
    """
    if not (np.isfinite([low, high, step]).all() and 0 <= low <= high < 1 and step > 0):
        raise ValueError(f"threshold_grid needs 0 <= low <= high < 1 and step > 0; got low={low!r}, high={high!r}, "
                         f"step={step!r}. Example: threshold_grid(0.01, 0.5, 0.01).")
    n = int(np.floor((high - low) / step + 1e-9)) + 1
    return np.round(low + step * np.arange(n), 6)


def default_thresholds(y_true) -> np.ndarray:
    """0.01 to 0.99 in steps of 0.01; below a 5% prevalence also 0.001 to 0.049 in steps of 0.001, since the thresholds worth acting on then lie near the prevalence (1.35% of patient-hours in the 2019
    sepsis data), where steps of 0.01 leave a handful of points.

    Examples
    --------
    >>> len(default_thresholds([0, 1])), len(default_thresholds([0] * 99 + [1]))
    (99, 144)
    """
    y = np.asarray(y_true, dtype=float).ravel()
    if len(y) and y.mean() < 0.05:
        return np.union1d(threshold_grid(0.001, 0.049, 0.001), DEFAULT_THRESHOLDS)
    return DEFAULT_THRESHOLDS.copy()


def _check_thresholds(thresholds) -> np.ndarray:
    t = DEFAULT_THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=float).ravel()
    if not len(t) or not np.isfinite(t).all() or (t < 0).any() or (t >= 1).any():
        raise ValueError("Threshold probabilities must be numbers in [0, 1) (at 1 the harm weight pt/(1-pt) is "
                         f"infinite); got {np.asarray(thresholds).ravel()[:5]!r}. Example: threshold_grid(0.01, 0.99).")
    return t


def _check_labels_risk(y_true, risk) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel()
    p = np.asarray(risk, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and risk must have one value per row; got {y.shape[0]} labels and {p.shape[0]} risks.")
    if not len(y):
        raise ValueError("A decision curve needs at least one row; got none.")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold 0/1 labels; recode the outcome (event = 1, none = 0).")
    if not np.isfinite(p).all():
        raise ValueError("risk contains NaN or infinite values; a decision curve needs a risk for every row.")
    return y.astype(int), p


def _cluster_counts(y: np.ndarray, p: np.ndarray, t: np.ndarray, codes: np.ndarray, n_clusters: int):
    """Per cluster (patient) and threshold: true and false positives, ``(n_clusters, k)`` each.

    Row ``i`` counts at threshold ``t[j]`` exactly when ``p[i] >= t[j]``, i.e. for ``j < J[i]`` with
    ``J = searchsorted(sorted t, p, "right")``: one histogram of ``J`` per cluster, summed from the right.
    No ``(n_rows, k)`` matrix is formed, so hundreds of thousands of patient-hours stay cheap.
    """
    order = np.argsort(t, kind="stable")
    ts = t[order]
    k = len(t)
    J = np.searchsorted(ts, p, side="right")                     # thresholds <= p: the first J (sorted)
    out = []
    for w in (y == 1, y == 0):
        h = np.bincount(codes[w].astype(np.int64) * (k + 1) + J[w], minlength=n_clusters * (k + 1))
        h = h.reshape(n_clusters, k + 1).astype(np.float64)
        above = np.cumsum(h[:, ::-1], axis=1)[:, ::-1][:, 1:]     # rows with J > j, for sorted threshold j
        res = np.empty_like(above)
        res[:, order] = above                                    # back to the caller's threshold order
        out.append(res)
    return out[0], out[1]


def net_benefit(y_true, risk, thresholds=None) -> np.ndarray:
    """Net benefit of acting when ``risk >= pt``, for every threshold probability ``pt``.

    Parameters
    ----------
    y_true : array-like (n,) of 0/1
        Outcome of every row (a patient; for an online run a patient-hour).
    risk : array-like (n,)
        Predicted probability of the outcome.
    thresholds : array-like (k,), optional
        Threshold probabilities in [0, 1) (default :data:`DEFAULT_THRESHOLDS`, 0.01 to 0.99).

    Returns
    -------
    ndarray (k,)
        ``TP/n - FP/n * pt/(1-pt)``.

    Raises
    ------
    ValueError
        Labels that are not 0/1, NaN risks, lengths that differ, thresholds outside [0, 1).

    Examples
    --------
    >>> net_benefit([1, 0, 1, 0], [0.9, 0.6, 0.4, 0.1], [0.5])     # TP=1, FP=1: 1/4 - 1/4 * 1
    array([0.])
    """
    y, p = _check_labels_risk(y_true, risk)
    t = _check_thresholds(thresholds)
    tp, fp = _cluster_counts(y, p, t, np.zeros(len(y), dtype=np.int64), 1)
    return tp[0] / len(y) - fp[0] / len(y) * t / (1 - t)


def treat_all(y_true, thresholds=None) -> np.ndarray:
    """Net benefit of acting on every row: ``prevalence - (1 - prevalence) * pt / (1 - pt)``, shape ``(k,)``.

    Examples
    --------
    >>> treat_all([1, 0, 0, 0], [0.0, 0.25])
    array([0.25, 0.  ])
    """
    y = np.asarray(y_true).ravel()
    if not len(y) or not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must be a non-empty array of 0/1 labels; recode the outcome (event = 1, none = 0).")
    t = _check_thresholds(thresholds)
    prev = float(np.mean(y))
    return prev - (1 - prev) * t / (1 - t)


@dataclass
class DecisionCurves:
    """Decision curves of several models scored on the same rows.

    Attributes
    ----------
    thresholds : ndarray (k,)
        Threshold probabilities.
    net_benefit : dict name -> ndarray (k,)
        Each model's net benefit.
    treat_all : ndarray (k,)
        Acting on every row; treat-none is 0 everywhere.
    prevalence : float
        Share of rows with the outcome.
    n_rows : int
        Rows (patients; patient-hours for an online run).
    ci : dict name -> (low (k,), high (k,))
        Percentile bootstrap band of each model's net benefit (empty without a bootstrap).
    ci_level : float
    labels : dict name -> str
        Display names (default: the names).
    unit : str
        What a row is: ``"patient"`` or ``"patient-hour"``.
    """

    thresholds: np.ndarray
    net_benefit: dict
    treat_all: np.ndarray
    prevalence: float
    n_rows: int
    ci: dict = field(default_factory=dict)
    ci_level: float = 0.95
    labels: dict = field(default_factory=dict)
    unit: str = "patient"

    def to_frame(self) -> pd.DataFrame:
        """Long table ``model, label, threshold, net_benefit[, low, high]``; treat-all and treat-none are the
        rows of ``model`` ``"all"`` and ``"none"`` (as in ``dcurves.dca``)."""
        rows = []
        for name, nb in self.net_benefit.items():
            d = {"model": name, "label": self.labels.get(name, name), "threshold": self.thresholds,
                 "net_benefit": nb}
            if name in self.ci:
                d["low"], d["high"] = self.ci[name]
            rows.append(pd.DataFrame(d))
        rows.append(pd.DataFrame({"model": "all", "label": "treat all", "threshold": self.thresholds,
                                  "net_benefit": self.treat_all}))
        rows.append(pd.DataFrame({"model": "none", "label": "treat none", "threshold": self.thresholds,
                                  "net_benefit": np.zeros(len(self.thresholds))}))
        return pd.concat(rows, ignore_index=True)

    def useful_range(self, name: str) -> tuple[float, float] | None:
        """The lowest and highest threshold where model ``name`` beats both treat-all and treat-none
        (``None`` when it never does). The range may have gaps; the curve shows them."""
        nb = self.net_benefit[name]
        ok = (nb > self.treat_all) & (nb > 0)
        return (float(self.thresholds[ok].min()), float(self.thresholds[ok].max())) if ok.any() else None


def decision_curves(y_true, risks: dict, thresholds=None, *, labels: dict | None = None, n_bootstrap: int = 0,
                    ci_level: float = 0.95, random_state: int = 0, groups=None,
                    bootstrap: ClusterBootstrap | None = None) -> DecisionCurves:
    """Net benefit of every model in ``risks`` (scored on the same rows), with treat-all and treat-none.

    Parameters
    ----------
    y_true : array-like (n,) of 0/1
        Outcome of every row. Stay run: a row is a patient. Online run: a row is a patient-hour.
    risks : dict name -> array-like (n,)
        Each model's risk for the same rows, in the same order.
    thresholds : array-like (k,), optional
        Threshold probabilities in [0, 1) (default 0.01 to 0.99; see :func:`threshold_grid`).
    labels : dict name -> str, optional
        Display names.
    n_bootstrap : int
        Resamples for a percentile band (0 = no band). Without ``groups`` rows are resampled
        (:func:`core.evaluation.metrics.bootstrap_indices`, one row per patient); with ``groups`` whole patients are.
    ci_level : float
    random_state : int
        Seed of the resamples (the same draws for every model).
    groups : array-like (n,), optional
        Online run: the patient of every row; the band then comes from a bootstrap over patients
        (:class:`core.evaluation.metrics.ClusterBootstrap`), since the hours of one stay move together.
    bootstrap : ClusterBootstrap, optional
        Ready-made patient resamples of these rows (overrides ``n_bootstrap``, ``random_state`` and ``groups``).

    Returns
    -------
    DecisionCurves

    Raises
    ------
    ValueError
        No model, rows that differ between models, labels that are not 0/1, NaN risks, thresholds outside
        [0, 1), a bootstrap built for other rows.
    """
    if not risks:
        raise ValueError("decision_curves needs at least one model's risks; got none. Example: "
                         "decision_curves(y, {'lr': risk_lr}).")
    t = _check_thresholds(thresholds)
    checked = {name: _check_labels_risk(y_true, r) for name, r in risks.items()}
    y = next(iter(checked.values()))[0]
    n = len(y)
    harm = t / (1 - t)
    if bootstrap is None and groups is not None and n_bootstrap > 0:
        bootstrap = ClusterBootstrap(groups, n_bootstrap, random_state)
    if bootstrap is not None:
        bootstrap.check_rows(n)
        codes, n_clusters = bootstrap.codes.astype(np.int64), bootstrap.n_patients
        blocks = list(bootstrap.iter_counts())
    else:
        codes, n_clusters = np.arange(n, dtype=np.int64), n
        blocks = []
        if n_bootstrap > 0:
            idx = bootstrap_indices(n, n_bootstrap, random_state)
            B = idx.shape[0]
            counts = np.bincount((idx + (np.arange(B) * n)[:, None]).ravel(), minlength=B * n).reshape(B, n)
            blocks = [counts[s:s + 64] for s in range(0, B, 64)]
    rows_per = np.bincount(codes, minlength=n_clusters).astype(np.float64)
    a = (1 - ci_level) / 2 * 100
    nb, ci = {}, {}
    for name, (_, p) in checked.items():
        tp, fp = _cluster_counts(y, p, t, codes, n_clusters)
        nb[name] = tp.sum(0) / n - fp.sum(0) / n * harm
        if blocks:
            vals = []
            for C in blocks:
                C = np.asarray(C, dtype=np.float64)
                m = (C @ rows_per)[:, None]
                vals.append((C @ tp) / m - (C @ fp) / m * harm)
            v = np.concatenate(vals)
            ci[name] = (np.percentile(v, a, axis=0), np.percentile(v, 100 - a, axis=0))
    return DecisionCurves(thresholds=t, net_benefit=nb, treat_all=treat_all(y, t), prevalence=float(y.mean()),
                          n_rows=n, ci=ci, ci_level=ci_level, labels=dict(labels or {}),
                          unit="patient-hour" if groups is not None or bootstrap is not None else "patient")


def curves_from_results(results, thresholds=None, *, n_bootstrap: int = 200, ci_level: float = 0.95,
                        random_state: int = 0) -> DecisionCurves:
    """:func:`decision_curves` of a run's test results (dict name -> :class:`core.evaluation.metrics.EvaluationResult`,
    all scored on the same rows, as a run's are), by default on :func:`default_thresholds`.

    An online run's results have ``times`` (rows are patient-hours): the band then resamples patients
    (their ``patient_ids``); a stay run's band resamples rows, one per patient.
    """
    results = dict(results)
    if not results:
        raise ValueError("curves_from_results needs at least one model's results; the run has none.")
    first = next(iter(results.values()))
    online = first.times is not None
    if thresholds is None:
        thresholds = default_thresholds(first.y_true)
    return decision_curves(first.y_true, {n: ev.y_proba for n, ev in results.items()}, thresholds,
                           labels={n: ev.label or n for n, ev in results.items()}, n_bootstrap=n_bootstrap,
                           ci_level=ci_level, random_state=random_state,
                           groups=np.asarray(first.patient_ids, dtype=object) if online else None)
