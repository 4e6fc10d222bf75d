"""Cross-validation results: the leaderboard as mean and SD over folds, and the time-order verdict across folds.

One 70/15/15 split of 4,000 stays leaves 600 test patients and AUROC intervals of about +-0.04, so "do sequence
models beat classical ones?" usually ends in "no significant difference" on one split. Repeated K-fold
cross-validation scores every patient. :func:`order_verdict` compares the two arms fold by fold: each arm is
represented by its model with the best mean AUROC over the folds, and the per-fold differences (sequence minus
classical) are tested with the corrected resampled t-test of Nadeau and Bengio (Machine Learning 2003;52:239-81),
which widens the naive variance by the overlap of the training sets (``1/(K*R) + n_test/n_train``); the naive
t-test over folds is far too confident.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["cv_summary", "order_verdict"]


def cv_summary(folds: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD over every fold (and repeat) per model: ``model, auroc_mean, auroc_std, auprc_mean, auprc_std,
    n_folds``, best mean AUROC first."""
    g = folds.groupby("model", sort=False)
    out = g[["auroc", "auprc"]].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["n_folds"] = g.size()
    return out.reset_index().sort_values("auroc_mean", ascending=False, kind="stable").reset_index(drop=True)


def order_verdict(folds: pd.DataFrame, sequence_models, n_folds: int, alpha: float = 0.05,
                  labels: dict | None = None) -> dict | None:
    """The best sequence model against the best classical model, fold by fold (see the module docstring).

    Parameters
    ----------
    folds : DataFrame
        ``model, fold, auroc`` (and ``repeat`` for repeated CV): one row per model and fold.
    sequence_models : collection of str
        The models that read the hours in order (the registry's ``input_kind == "sequence"``).
    n_folds : int
        K (the test share of a fold is 1/K, its training share about (K-1)/K).
    labels : dict, optional
        ``{model: label}`` for the sentence.

    Returns
    -------
    dict with ``sequence``, ``classical`` (the two models), ``difference`` (mean AUROC difference), ``sd``,
    ``ci_low``, ``ci_high``, ``p_value``, ``wins`` (folds where the sequence model is ahead), ``n`` (folds) and
    ``sentence``; ``None`` when either arm has no model.
    """
    seq = [m for m in folds["model"].unique() if m in set(sequence_models)]
    cla = [m for m in folds["model"].unique() if m not in set(sequence_models)]
    if not seq or not cla:
        return None
    means = folds.groupby("model")["auroc"].mean()
    best_seq, best_cla = means[seq].idxmax(), means[cla].idxmax()
    keys = [k for k in ("repeat", "fold") if k in folds.columns]
    a = folds[folds["model"] == best_seq].set_index(keys)["auroc"]
    b = folds[folds["model"] == best_cla].set_index(keys)["auroc"]
    d = (a - b.reindex(a.index)).dropna().to_numpy(dtype=float)
    n = d.size
    mean = float(d.mean()) if n else float("nan")
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    factor = 1 / n + 1 / max(n_folds - 1, 1)            # Nadeau-Bengio: 1/(K*R) + n_test/n_train
    se = float(np.sqrt(factor) * sd) if n > 1 else float("nan")
    if n > 1 and se > 0:
        t = stats.t.ppf(1 - alpha / 2, n - 1)
        lo, hi = mean - t * se, mean + t * se
        p = float(2 * stats.t.sf(abs(mean / se), n - 1))
    else:
        lo = hi = p = float("nan")
    wins = int((d > 0).sum())
    if not np.isfinite(p):
        verdict = "not testable"
    elif p < alpha:
        verdict = "the sequence model is significantly " + ("better: order helps here" if mean > 0 else "worse")
    else:
        verdict = "no significant difference"
    ls, lc = (labels or {}).get(best_seq, best_seq), (labels or {}).get(best_cla, best_cla)
    sentence = (f"Across {n} folds, {ls} minus {lc}: {mean:+.3f} AUROC (95% CI {lo:+.3f} to {hi:+.3f}, "
                f"corrected resampled t-test p={p:.3f}); {ls} ahead in {wins} of {n} folds: {verdict}.")
    return {"sequence": best_seq, "classical": best_cla, "difference": mean, "sd": sd, "ci_low": lo, "ci_high": hi,
            "p_value": p, "wins": wins, "n": n, "sentence": sentence}
