"""Several paired tests at once: Holm's step-down adjustment of their p-values.

Seven models compared with one reference are seven tests; at 5% each, the chance that at least one of them
says "significant" by luck alone is far above 5%. Holm's method (Holm, Scand J Statist 1979;6:65-70) keeps that
family-wise error at the chosen level without assuming the tests are independent, and is never less powerful than
Bonferroni. Written here (eight lines) rather than taken from statsmodels, which the app does not otherwise need;
the tests check it against ``statsmodels.stats.multitest.multipletests(method="holm")``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["holm"]


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values, in the order given.

    Parameters
    ----------
    p_values : array-like of float
        Raw p-values; NaN (a test that could not be made) stays NaN and does not count as a test.

    Returns
    -------
    ndarray of float, same shape: ``min(1, max over the i smallest of (m - rank + 1) * p)``, where ``m`` is
    the number of finite p-values. Reject at level ``alpha`` where the adjusted value is below ``alpha``.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, float("nan")]).round(3).tolist()
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p.ravel()))
    m = finite.size
    if not m:
        return out
    order = finite[np.argsort(p.ravel()[finite], kind="stable")]
    steps = (m - np.arange(m)) * p.ravel()[order]
    out.ravel()[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return out
