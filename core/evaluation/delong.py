"""DeLong's variance of an AUROC and test of two correlated AUROCs, with the fast midrank algorithm of
Sun & Xu (2014)."""
from __future__ import annotations

import numpy as np
from scipy import stats

from core.evaluation.point_metrics import check_arrays

__all__ = ["delong_auc_variance", "delong_test"]


def _structural_components(y: np.ndarray, P: np.ndarray):
    """DeLong placements (Sun & Xu 2014) for ``P`` of shape (k_models, n)."""
    pos, neg = P[:, y == 1], P[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    tx = stats.rankdata(pos, axis=1)
    ty = stats.rankdata(neg, axis=1)
    tz = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    auc = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    v01 = (tz[:, :m] - tx) / n            # per positive
    v10 = 1.0 - (tz[:, m:] - ty) / m      # per negative
    return auc, v01, v10, m, n


def delong_auc_variance(y_true, y_score) -> tuple[float, float]:
    """AUROC and its DeLong variance."""
    y, p = check_arrays(y_true, y_score)
    auc, v01, v10, m, n = _structural_components(y, p[None, :])
    var = np.var(v01, ddof=1) / m + np.var(v10, ddof=1) / n
    return float(auc[0]), float(var)


def delong_test(y_true, y_score_a, y_score_b) -> dict[str, float]:
    """DeLong's test for two correlated AUROCs (same patients).

    Returns
    -------
    dict
        ``auroc_a``, ``auroc_b``, ``difference`` (a - b), ``se``, ``z`` and two-sided ``p_value``.
    """
    y, pa = check_arrays(y_true, y_score_a)
    _, pb = check_arrays(y_true, y_score_b)
    if len(np.unique(y)) < 2:
        raise ValueError("DeLong's test needs both outcomes among the patients; got only one class.")
    auc, v01, v10, m, n = _structural_components(y, np.vstack([pa, pb]))
    cov = np.cov(v01) / m + np.cov(v10) / n
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    diff = float(auc[0] - auc[1])
    se = float(np.sqrt(max(var, 0.0)))
    if se < 1e-12:
        z, pval = 0.0, 1.0
    else:
        z = diff / se
        pval = float(2 * stats.norm.sf(abs(z)))
    return {"auroc_a": float(auc[0]), "auroc_b": float(auc[1]), "difference": diff, "se": se, "z": float(z),
            "p_value": pval}
