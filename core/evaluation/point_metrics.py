"""Point metrics of one model's predictions: discrimination, calibration and the metrics at a threshold.

Everything here works on arrays of labels and positive-class probabilities, so it is model-agnostic.
"""
from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from core.config import EvaluationConfig

__all__ = ["METRICS", "THRESHOLD_METRICS", "PROBA_EPS", "check_arrays", "threshold_metrics", "confusion_ratios",
           "binary_metrics", "choose_threshold"]

#: threshold-free metrics, then metrics at the saved decision threshold.
THRESHOLD_METRICS = ("sensitivity", "specificity", "ppv", "npv", "min_se_ppv")
METRICS = ("auroc", "auprc", "brier", "log_loss") + THRESHOLD_METRICS
#: the smallest probability a log-loss takes the log of.
PROBA_EPS = 1e-15


def check_arrays(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    """Labels as int and scores as float, both 1-D, of one length.

    Raises
    ------
    ValueError
        If the lengths differ, a label is not 0/1 or a score is NaN or infinite.
    """
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(y_score, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and y_score must have the same length; got {y.shape[0]} and {p.shape[0]}.")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold 0/1 labels; recode the target (e.g. death = 1, survival = 0).")
    if not np.isfinite(p).all():
        raise ValueError("y_score contains NaN or infinite values; check the model's predictions.")
    return y, p


def threshold_metrics(y_true, y_score, threshold: float) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV and min(Se, PPV) when ``y_score >= threshold`` is positive.

    Undefined ratios (e.g. PPV with no positive prediction) are NaN.
    """
    y, p = check_arrays(y_true, y_score)
    pred = p >= threshold
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    tn = float(np.sum(~pred & (y == 0)))
    return confusion_ratios(tp, fp, fn, tn)


def confusion_ratios(tp, fp, fn, tn) -> dict:
    """Sensitivity, specificity, PPV, NPV and min(Se, PPV) from confusion counts (scalars or arrays); NaN where
    undefined."""
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
    y, p = check_arrays(y_true, y_score)
    both = len(np.unique(y)) == 2
    out = {
        "auroc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "auprc": float(skm.average_precision_score(y, p)) if both else float("nan"),
        "brier": float(skm.brier_score_loss(y, p, pos_label=1)),
        # both columns clipped at PROBA_EPS as before (sklearn alone clips at float64 eps, changing extreme risks)
        "log_loss": float(skm.log_loss(y, np.column_stack([np.clip(1 - p, PROBA_EPS, 1), np.clip(p, PROBA_EPS, 1)]),
                                       labels=[0, 1])),
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
    y, p = check_arrays(y_true, y_score)
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
