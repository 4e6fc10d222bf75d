"""Metrics, bootstrap confidence intervals, thresholds and paired model comparisons.

Everything here works on arrays of labels and positive-class probabilities, so it is model-agnostic.
Bootstrap statistics are vectorised over a ``(n_bootstrap, n_patients)`` index matrix (1000
resamples of 600 patients take well under a second). DeLong's test uses the fast midrank
algorithm of Sun & Xu (2014).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from core.config import EvaluationConfig

__all__ = ["EvaluationResult", "ComparisonResult", "binary_metrics", "threshold_metrics", "choose_threshold",
           "bootstrap_indices", "bootstrap_metrics", "delong_test", "delong_auc_variance", "paired_bootstrap",
           "evaluate", "compare", "METRICS", "THRESHOLD_METRICS", "describe_comparison"]

#: threshold-free metrics, then metrics at the saved decision threshold.
THRESHOLD_METRICS = ("sensitivity", "specificity", "ppv", "npv", "min_se_ppv")
METRICS = ("auroc", "auprc", "brier", "log_loss") + THRESHOLD_METRICS
_EPS = 1e-15


def _check_arrays(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(y_score, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and y_score must have the same length; got {y.shape[0]} and {p.shape[0]}.")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold 0/1 labels; recode the target (e.g. death = 1, survival = 0).")
    if not np.isfinite(p).all():
        raise ValueError("y_score contains NaN or infinite values; check the model's predictions.")
    return y, p


# --------------------------------------------------------------------------------------------
# point metrics
# --------------------------------------------------------------------------------------------
def threshold_metrics(y_true, y_score, threshold: float) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV and min(Se, PPV) when ``y_score >= threshold`` is positive.

    Undefined ratios (e.g. PPV with no positive prediction) are NaN.
    """
    y, p = _check_arrays(y_true, y_score)
    pred = p >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    tn = float(np.sum(~pred & (y == 0)))
    return _ratios(tp, fp, fn, tn)


def _ratios(tp, fp, fn, tn) -> dict:
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.divide(tp, tp + fn)
        sp = np.divide(tn, tn + fp)
        ppv = np.divide(tp, tp + fp)
        npv = np.divide(tn, tn + fn)
    return {"sensitivity": se, "specificity": sp, "ppv": ppv, "npv": npv, "min_se_ppv": np.fmin(se, ppv)}


def binary_metrics(y_true, y_score, threshold: float = 0.5) -> dict[str, float]:
    """AUROC, AUPRC (average precision), Brier score, log-loss and the threshold metrics.

    Examples
    --------
    >>> m = binary_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], threshold=0.5)
    >>> round(m["auroc"], 2), m["sensitivity"], m["specificity"]
    (0.75, 0.5, 1.0)
    """
    y, p = _check_arrays(y_true, y_score)
    both = len(np.unique(y)) == 2
    out = {
        "auroc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "auprc": float(skm.average_precision_score(y, p)) if both else float("nan"),
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": float(-np.mean(y * np.log(np.clip(p, _EPS, 1)) + (1 - y) * np.log(np.clip(1 - p, _EPS, 1)))),
    }
    out.update({k: float(v) for k, v in threshold_metrics(y, p, threshold).items()})
    return out


def choose_threshold(y_true, y_score, rule: str = "se_ppv", target_sensitivity: float = 0.8) -> float:
    """Decision threshold from (validation) predictions.

    Parameters
    ----------
    rule : {"se_ppv", "youden", "sensitivity"}
        ``"se_ppv"`` maximises min(sensitivity, PPV), i.e. the point where they meet;
        ``"youden"`` maximises Se + Sp - 1; ``"sensitivity"`` is the highest threshold whose
        sensitivity reaches ``target_sensitivity``.

    Returns
    -------
    float
        Patients with ``risk >= threshold`` are predicted positive.
    """
    EvaluationConfig(threshold_rule=rule, target_sensitivity=target_sensitivity)  # validates
    y, p = _check_arrays(y_true, y_score)
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    last = np.r_[ps[1:] != ps[:-1], True]           # candidate cut after each distinct score
    tp, fp, thr = tp[last], fp[last], ps[last]
    P, N = max(y.sum(), 1), max((1 - y).sum(), 1)
    se, sp, ppv = tp / P, 1 - fp / N, tp / np.maximum(tp + fp, 1)
    if rule == "se_ppv":
        score = np.minimum(se, ppv)
    elif rule == "youden":
        score = se + sp - 1
    else:
        ok = se >= target_sensitivity
        return float(thr[np.argmax(ok)]) if ok.any() else float(thr[-1])
    return float(thr[int(np.argmax(score))])


# --------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------
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
    Pc = np.clip(P, _EPS, 1 - _EPS)
    out = {"auroc": _auroc_rows(Y, P), "auprc": _auprc_rows(Y, P), "brier": ((P - Y) ** 2).mean(1),
           "log_loss": -(Y * np.log(Pc) + (1 - Y) * np.log(1 - Pc)).mean(1)}
    out.update(_ratios(tp, fp, fn, tn))
    return out


def bootstrap_metrics(y_true, y_score, threshold: float, idx: np.ndarray,
                      ci_level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile confidence interval of every metric in :data:`METRICS` over resamples ``idx``."""
    y, p = _check_arrays(y_true, y_score)
    rows = _metric_rows(y, p, idx, threshold)
    a = (1 - ci_level) / 2 * 100
    out = {}
    for k, v in rows.items():
        v = v[np.isfinite(v)]
        out[k] = (float(np.percentile(v, a)), float(np.percentile(v, 100 - a))) if len(v) else (np.nan, np.nan)
    return out


# --------------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------------
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
    y, p = _check_arrays(y_true, y_score)
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
    y, pa = _check_arrays(y_true, y_score_a)
    _, pb = _check_arrays(y_true, y_score_b)
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


def paired_bootstrap(y_true, y_score_a, y_score_b, idx: np.ndarray, metric: str = "auroc",
                     ci_level: float = 0.95, thresholds: tuple[float, float] = (0.5, 0.5)) -> dict[str, float]:
    """Bootstrap distribution of ``metric(a) - metric(b)`` on shared resamples.

    Returns ``difference`` (on the full data), ``ci_low``, ``ci_high`` and a two-sided ``p_value``
    (twice the share of resamples on the other side of zero).
    """
    y, pa = _check_arrays(y_true, y_score_a)
    _, pb = _check_arrays(y_true, y_score_b)
    w = metric if metric == "auroc" else None
    da = _metric_rows(y, pa, idx, thresholds[0], w)[metric]
    db = _metric_rows(y, pb, idx, thresholds[1], w)[metric]
    d = (da - db)[np.isfinite(da - db)]
    full = _metric_rows(y, pa, np.arange(len(y))[None], thresholds[0], w)[metric][0] - \
        _metric_rows(y, pb, np.arange(len(y))[None], thresholds[1], w)[metric][0]
    a = (1 - ci_level) / 2 * 100
    if not len(d):
        return {"difference": float(full), "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    p = min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0)))
    return {"difference": float(full), "ci_low": float(np.percentile(d, a)),
            "ci_high": float(np.percentile(d, 100 - a)), "p_value": float(p)}


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass
class EvaluationResult:
    """One model on one set of patients.

    Attributes
    ----------
    model_name : str
    metrics : dict of str to float (see :data:`METRICS`)
    ci : dict of str to (low, high)
        Bootstrap confidence intervals (empty when ``n_bootstrap=0``).
    threshold : float
        Decision threshold chosen on validation data (saved with the model).
    y_true : ndarray (n,) of 0/1
    y_proba : ndarray (n,)
        Risk (probability of the positive class).
    patient_ids : ndarray (n,) of str
    label : str
        Human-readable model name.
    """

    model_name: str
    metrics: dict
    ci: dict
    threshold: float
    y_true: np.ndarray
    y_proba: np.ndarray
    patient_ids: np.ndarray
    label: str = ""
    extra: dict = field(default_factory=dict)

    def roc_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(false positive rate, true positive rate)."""
        fpr, tpr, _ = skm.roc_curve(self.y_true, self.y_proba)
        return fpr, tpr

    def pr_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(recall, precision)."""
        prec, rec, _ = skm.precision_recall_curve(self.y_true, self.y_proba)
        return rec, prec

    def calibration_curve(self, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean predicted risk, observed rate, patients) per quantile bin of risk."""
        q = np.unique(np.quantile(self.y_proba, np.linspace(0, 1, n_bins + 1)))
        b = np.clip(np.searchsorted(q, self.y_proba, side="right") - 1, 0, max(len(q) - 2, 0))
        cnt = np.bincount(b, minlength=max(len(q) - 1, 1))
        keep = cnt > 0
        pred = np.bincount(b, weights=self.y_proba, minlength=len(cnt))[keep] / cnt[keep]
        obs = np.bincount(b, weights=self.y_true, minlength=len(cnt))[keep] / cnt[keep]
        return pred, obs, cnt[keep]

    def confusion(self, threshold: float | None = None) -> np.ndarray:
        """2x2 counts [[TN, FP], [FN, TP]] at ``threshold`` (default: the saved one)."""
        t = self.threshold if threshold is None else threshold
        pred = self.y_proba >= t
        y = self.y_true.astype(bool)
        return np.array([[np.sum(~pred & ~y), np.sum(pred & ~y)], [np.sum(~pred & y), np.sum(pred & y)]])

    def summary(self) -> dict:
        """Flat JSON-able dict: metrics, ``<metric>_ci`` pairs and the threshold."""
        out = {k: _num(v) for k, v in self.metrics.items()}
        out.update({f"{k}_ci": [_num(v[0]), _num(v[1])] for k, v in self.ci.items()})
        out["threshold"] = float(self.threshold)
        out["n_patients"] = int(len(self.y_true))
        out["n_positive"] = int(np.sum(self.y_true))
        out.update(self.extra)
        return out


def _num(v):
    v = float(v)
    return v if np.isfinite(v) else None


@dataclass(frozen=True)
class ComparisonResult:
    """A paired comparison of one model against a reference on the same test patients.

    ``difference`` etc. are for ``metric`` (model minus reference); ``p_delong`` is DeLong's test of
    AUROC, ``p_bootstrap`` the paired bootstrap p-value.
    """

    model_name: str
    reference_name: str
    metric: str
    difference: float
    ci_low: float
    ci_high: float
    p_bootstrap: float
    p_delong: float
    sentence: str

    def to_dict(self) -> dict:
        return {k: (_num(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def evaluate(model_name: str, y_true, y_proba, threshold: float, patient_ids=None,
             config: EvaluationConfig | None = None, label: str = "", idx: np.ndarray | None = None
             ) -> EvaluationResult:
    """Metrics with bootstrap CIs for one model's test predictions.

    Parameters
    ----------
    y_proba : array (n,) or (n, 2)
        Risk, or ``predict_proba`` output (column 1 is used).
    idx : array (n_bootstrap, n), optional
        Shared resample indices (default: drawn from ``config``).
    """
    config = config or EvaluationConfig()
    p = np.asarray(y_proba, dtype=float)
    p = p[:, 1] if p.ndim == 2 else p
    y, p = _check_arrays(y_true, p)
    m = binary_metrics(y, p, threshold)
    ci = {}
    if config.n_bootstrap > 0:
        if idx is None:
            idx = bootstrap_indices(len(y), config.n_bootstrap, config.random_state)
        ci = bootstrap_metrics(y, p, threshold, idx, config.ci_level)
    ids = np.arange(len(y)).astype(str) if patient_ids is None else np.asarray(patient_ids, dtype=object)
    return EvaluationResult(model_name, m, ci, float(threshold), y, p, ids, label or model_name)


def describe_comparison(label: str, ref_label: str, diff: float, lo: float, hi: float, p: float,
                        metric: str = "AUROC", alpha: float = 0.05) -> str:
    """Plain words, e.g. "GRU vs gradient boosting: -0.009 AUROC [-0.021, 0.002], p=0.12: no significant difference"."""
    if not np.isfinite(p):
        verdict = "not testable"
    elif p < alpha:
        verdict = f"{label} is significantly {'better' if diff > 0 else 'worse'}"
    else:
        verdict = "no significant difference"
    ci = f" [{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else ""
    ptxt = f"p={p:.3f}" if p >= 0.001 else "p<0.001"
    return f"{label} vs {ref_label}: {diff:+.3f} {metric}{ci}, {ptxt}: {verdict}"


def compare(result: EvaluationResult, reference: EvaluationResult, config: EvaluationConfig | None = None,
            idx: np.ndarray | None = None) -> ComparisonResult:
    """Paired AUROC comparison of ``result`` against ``reference`` (same patients, same order).

    The sentence uses DeLong's p-value and the paired-bootstrap confidence interval.

    Raises
    ------
    ValueError
        If the two results are not on the same patients.
    """
    config = config or EvaluationConfig()
    if len(result.patient_ids) != len(reference.patient_ids) or \
            not np.array_equal(result.patient_ids, reference.patient_ids):
        raise ValueError("Paired comparison needs both models scored on the same patients in the same order.")
    y = result.y_true
    d = delong_test(y, result.y_proba, reference.y_proba)
    if config.n_bootstrap > 0:
        if idx is None:
            idx = bootstrap_indices(len(y), config.n_bootstrap, config.random_state)
        b = paired_bootstrap(y, result.y_proba, reference.y_proba, idx, "auroc", config.ci_level)
    else:
        z = stats.norm.ppf(1 - (1 - config.ci_level) / 2)
        b = {"difference": d["difference"], "ci_low": d["difference"] - z * d["se"],
             "ci_high": d["difference"] + z * d["se"], "p_value": np.nan}
    sentence = describe_comparison(result.label, reference.label, d["difference"], b["ci_low"], b["ci_high"],
                                   d["p_value"])
    return ComparisonResult(result.model_name, reference.model_name, "auroc", d["difference"], b["ci_low"],
                            b["ci_high"], b["p_value"], d["p_value"], sentence)
