"""Bootstrap confidence intervals and paired comparisons when every row is one patient.

Statistics are vectorised over a ``(n_bootstrap, n_patients)`` index matrix (1000 resamples of 600
patients take well under a second). Rows that are patient-hours need whole patients resampled
instead: :mod:`core.evaluation.cluster`.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from core.evaluation.point_metrics import PROBA_EPS, check_arrays, confusion_ratios

__all__ = ["bootstrap_indices", "bootstrap_metrics", "paired_bootstrap", "percentile_ci", "paired_summary"]


def bootstrap_indices(n: int, n_bootstrap: int = 1000, random_state: int = 0) -> np.ndarray:
    """Resample indices ``(n_bootstrap, n)``; share them between models for paired comparisons."""
    rng = np.random.default_rng(random_state)
    return rng.integers(0, n, size=(n_bootstrap, n))


def _auroc_rows(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """AUROC of every row (Mann-Whitney with midranks); NaN where a row has one class."""
    R = stats.rankdata(P, axis=1)
    n1 = Y.sum(axis=1)
    n0 = Y.shape[1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((R * Y).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def _auprc_rows(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Average precision of every row, with tied scores grouped as scikit-learn does."""
    order = np.argsort(-P, axis=1, kind="stable")
    ps = np.take_along_axis(P, order, axis=1)
    ys = np.take_along_axis(Y, order, axis=1)
    tp = np.cumsum(ys, axis=1)
    k = np.arange(1, Y.shape[1] + 1)[None, :]
    end = np.concatenate([ps[:, 1:] != ps[:, :-1], np.ones((len(ps), 1), bool)], axis=1)
    tp_end = np.where(end, tp, 0)
    prev = np.maximum.accumulate(np.concatenate([np.zeros((len(ps), 1)), tp_end[:, :-1]], axis=1), axis=1)
    contrib = np.where(end, (tp - prev) * tp / k, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return contrib.sum(axis=1) / tp[:, -1]


def _metric_rows(y: np.ndarray, p: np.ndarray, idx: np.ndarray, threshold: float,
                 which: str | None = None) -> dict[str, np.ndarray]:
    Y, P = y[idx], p[idx]
    if which == "auroc":        # the paired test needs only this: skip the rest
        return {"auroc": _auroc_rows(Y, P)}
    pred = P >= threshold
    tp = (pred & (Y == 1)).sum(1).astype(float)
    fp = (pred & (Y == 0)).sum(1).astype(float)
    fn = (~pred & (Y == 1)).sum(1).astype(float)
    tn = (~pred & (Y == 0)).sum(1).astype(float)
    Pc = np.clip(P, PROBA_EPS, 1 - PROBA_EPS)
    # every resample (row) at once: sklearn's brier_score_loss/log_loss take one vector per call
    out = {"auroc": _auroc_rows(Y, P), "auprc": _auprc_rows(Y, P), "brier": ((P - Y) ** 2).mean(1),
           "log_loss": -(Y * np.log(Pc) + (1 - Y) * np.log(1 - Pc)).mean(1)}
    out.update(confusion_ratios(tp, fp, fn, tn))
    return out


def bootstrap_metrics(y_true, y_score, threshold: float, idx: np.ndarray,
                      ci_level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile confidence interval of every metric in :data:`~core.evaluation.point_metrics.METRICS` over
    resamples ``idx``."""
    y, p = check_arrays(y_true, y_score)
    return percentile_ci(_metric_rows(y, p, idx, threshold), ci_level)


def percentile_ci(rows: dict[str, np.ndarray], ci_level: float) -> dict[str, tuple[float, float]]:
    """Percentile interval of each metric's resample values, ignoring undefined (NaN) resamples."""
    a = (1 - ci_level) / 2 * 100
    out = {}
    for k, v in rows.items():
        v = v[np.isfinite(v)]
        out[k] = (float(np.percentile(v, a)), float(np.percentile(v, 100 - a))) if len(v) else (np.nan, np.nan)
    return out


def paired_bootstrap(y_true, y_score_a, y_score_b, idx: np.ndarray, metric: str = "auroc",
                     ci_level: float = 0.95, thresholds: tuple[float, float] = (0.5, 0.5)) -> dict[str, float]:
    """Bootstrap distribution of ``metric(a) - metric(b)`` on shared resamples.

    Returns ``difference`` (on the full data), ``ci_low``, ``ci_high`` and a two-sided ``p_value``
    (twice the share of resamples on the other side of zero).
    """
    y, pa = check_arrays(y_true, y_score_a)
    _, pb = check_arrays(y_true, y_score_b)
    w = metric if metric == "auroc" else None
    da = _metric_rows(y, pa, idx, thresholds[0], w)[metric]
    db = _metric_rows(y, pb, idx, thresholds[1], w)[metric]
    full = _metric_rows(y, pa, np.arange(len(y))[None], thresholds[0], w)[metric][0] - \
        _metric_rows(y, pb, np.arange(len(y))[None], thresholds[1], w)[metric][0]
    return paired_summary(full, da - db, ci_level)


def paired_summary(full: float, diffs: np.ndarray, ci_level: float) -> dict[str, float]:
    """Difference on the full data, percentile CI and two-sided p-value of the resampled differences."""
    d = diffs[np.isfinite(diffs)]
    a = (1 - ci_level) / 2 * 100
    if not len(d):
        return {"difference": float(full), "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    p = min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0)))
    return {"difference": float(full), "ci_low": float(np.percentile(d, a)),
            "ci_high": float(np.percentile(d, 100 - a)), "p_value": float(p)}
