"""Calibration of risks on new data: calibration-in-the-large and the calibration slope.

A model moved to another hospital usually keeps some of its ranking (AUROC) and loses its calibration: the
risks are too high or too low on average (calibration-in-the-large), or too extreme (slope below 1) or too timid
(slope above 1). Both come from logistic recalibration (Cox, Biometrika 1958; Van Calster et al., J Clin
Epidemiol 2016;74:167-76): regress the outcome on the logit of the risk,

* slope: ``logit P(y=1) = a + b * logit(p)``, the fitted ``b`` (1 is ideal);
* calibration-in-the-large: ``logit P(y=1) = a + logit(p)`` (slope fixed at 1, an offset), the fitted ``a``
  (0 is ideal; above 0: the model under-estimates the risk).

Both are fitted by Newton's method here (a two-parameter logistic regression needs no library); the tests check
them against ``statsmodels``' GLM.
"""
from __future__ import annotations

import numpy as np

__all__ = ["calibration_intercept_slope"]

#: risks are kept this far from 0 and 1 before taking logits (a risk of exactly 0 or 1 has an infinite logit).
_EPS = 1e-6


def _newton(X: np.ndarray, y: np.ndarray, offset: np.ndarray, iterations: int = 50) -> np.ndarray:
    beta = np.zeros(X.shape[1])
    for _ in range(iterations):
        eta = X @ beta + offset
        mu = 1.0 / (1.0 + np.exp(-eta))
        w = mu * (1.0 - mu)
        grad = X.T @ (y - mu)
        hess = (X * w[:, None]).T @ X
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return np.full(X.shape[1], np.nan)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            return beta
    return beta if np.all(np.isfinite(beta)) else np.full(X.shape[1], np.nan)


def calibration_intercept_slope(y_true, risk) -> dict[str, float]:
    """Calibration-in-the-large and slope of ``risk`` against the outcomes ``y_true``.

    Parameters
    ----------
    y_true : array-like of 0/1, shape (n,)
    risk : array-like of float in [0, 1], shape (n,)

    Returns
    -------
    dict with ``calibration_in_the_large`` (0 is ideal) and ``calibration_slope`` (1 is ideal); NaN when the
    outcomes are all alike or the risks do not vary (the slope), or the fit does not converge.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.95, 20000)
    >>> y = (rng.uniform(size=p.size) < p).astype(int)        # perfectly calibrated risks
    >>> {k: round(v, 1) for k, v in calibration_intercept_slope(y, p).items()}
    {'calibration_in_the_large': 0.0, 'calibration_slope': 1.0}
    """
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.clip(np.asarray(risk, dtype=float).ravel(), _EPS, 1 - _EPS)
    out = {"calibration_in_the_large": float("nan"), "calibration_slope": float("nan")}
    if y.size == 0 or y.size != p.size or np.unique(y).size < 2 or not np.isfinite(p).all():
        return out
    lp = np.log(p / (1 - p))
    out["calibration_in_the_large"] = float(_newton(np.ones((y.size, 1)), y, lp)[0])
    if np.ptp(lp) > 0:
        out["calibration_slope"] = float(_newton(np.column_stack([np.ones(y.size), lp]), y, np.zeros(y.size))[1])
    return out
