"""Metrics, bootstrap confidence intervals, thresholds and paired model comparisons.

Everything here works on arrays of labels and positive-class probabilities, so it is model-agnostic.
Bootstrap statistics are vectorised over a ``(n_bootstrap, n_patients)`` index matrix (1000
resamples of 600 patients take well under a second). DeLong's test uses the fast midrank
algorithm of Sun & Xu (2014).

For the online task, rows are patient-hours (many per patient). :class:`ClusterBootstrap` then
resamples patients, not rows, and weights each row by its patient's draw count; the weighted metrics
are vectorised over chunks of resamples, so 1000 resamples of 40,000 rows never form one big matrix.
:func:`alarm_metrics` describes the alarms a model would raise at its threshold.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

from core.config import EvaluationConfig

__all__ = ["EvaluationResult", "ComparisonResult", "binary_metrics", "threshold_metrics", "choose_threshold",
           "bootstrap_indices", "bootstrap_metrics", "delong_test", "delong_auc_variance", "paired_bootstrap",
           "evaluate", "compare", "METRICS", "THRESHOLD_METRICS", "describe_comparison",
           "ClusterBootstrap", "cluster_bootstrap_metrics", "cluster_paired_bootstrap", "alarm_metrics"]

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
        "brier": float(skm.brier_score_loss(y, p, pos_label=1)),
        # both columns clipped at _EPS as before (sklearn alone clips at float64 eps, changing extreme risks)
        "log_loss": float(skm.log_loss(y, np.column_stack([np.clip(1 - p, _EPS, 1), np.clip(p, _EPS, 1)]),
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
    # every resample (row) at once: sklearn's brier_score_loss/log_loss take one vector per call
    out = {"auroc": _auroc_rows(Y, P), "auprc": _auprc_rows(Y, P), "brier": ((P - Y) ** 2).mean(1),
           "log_loss": -(Y * np.log(Pc) + (1 - Y) * np.log(1 - Pc)).mean(1)}
    out.update(_ratios(tp, fp, fn, tn))
    return out


def bootstrap_metrics(y_true, y_score, threshold: float, idx: np.ndarray,
                      ci_level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile confidence interval of every metric in :data:`METRICS` over resamples ``idx``."""
    y, p = _check_arrays(y_true, y_score)
    return _percentile_ci(_metric_rows(y, p, idx, threshold), ci_level)


def _percentile_ci(rows: dict[str, np.ndarray], ci_level: float) -> dict[str, tuple[float, float]]:
    """Percentile interval of each metric's resample values, ignoring undefined (NaN) resamples."""
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
    full = _metric_rows(y, pa, np.arange(len(y))[None], thresholds[0], w)[metric][0] - \
        _metric_rows(y, pb, np.arange(len(y))[None], thresholds[1], w)[metric][0]
    return _paired_summary(full, da - db, ci_level)


def _paired_summary(full: float, diffs: np.ndarray, ci_level: float) -> dict[str, float]:
    """Difference on the full data, percentile CI and two-sided p-value of the resampled differences."""
    d = diffs[np.isfinite(diffs)]
    a = (1 - ci_level) / 2 * 100
    if not len(d):
        return {"difference": float(full), "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    p = min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0)))
    return {"difference": float(full), "ci_low": float(np.percentile(d, a)),
            "ci_high": float(np.percentile(d, 100 - a)), "p_value": float(p)}


# --------------------------------------------------------------------------------------------
# cluster (patient) bootstrap for patient-hour rows
# --------------------------------------------------------------------------------------------
class ClusterBootstrap:
    """Patient-level bootstrap resamples for rows that are patient-hours.

    Rows of one patient are correlated, so resampling rows would understate the uncertainty.
    Each resample instead draws ``n_patients`` patients with replacement; every row then carries its
    patient's draw count as a weight (0 = left out, 2 = drawn twice, ...). Build it once per set of
    rows and share it between models, so that their comparisons are paired.

    Parameters
    ----------
    groups : array-like (n_rows,)
        Patient id of every row (many rows per patient; no missing ids).
    n_bootstrap : int
        Number of resamples (>= 1).
    random_state : int
        Seed of the draws.
    chunk_size : int
        Resamples per weight matrix yielded by :meth:`iter_row_weights` (bounds memory to
        ``chunk_size * n_rows`` float64 values).

    Attributes
    ----------
    patients : ndarray (n_patients,)
        Distinct patient ids, sorted; ``patients[codes]`` gives back ``groups``.
    codes : ndarray (n_rows,) of int
        Row -> index into ``patients``.
    counts : ndarray (n_bootstrap, n_patients) of int16 (int32 above 32,767 patients)
        How often each patient is drawn in each resample; every row sums to ``n_patients``.

    Raises
    ------
    ValueError
        If ``groups`` is empty or has missing ids, or ``n_bootstrap`` / ``chunk_size`` is below 1.

    Examples
    --------
    >>> boot = ClusterBootstrap(["a", "a", "b", "c"], n_bootstrap=5, random_state=0)
    >>> boot.counts.shape, boot.n_rows
    ((5, 3), 4)
    >>> [w.shape for w in boot.iter_row_weights(chunk_size=2)]
    [(2, 4), (2, 4), (1, 4)]
    """

    __slots__ = ("_patients", "_codes", "_counts", "_random_state", "_chunk_size")

    def __init__(self, groups, n_bootstrap: int = 1000, random_state: int = 0, chunk_size: int = 64) -> None:
        g = np.asarray(groups, dtype=object).ravel()
        if not len(g):
            raise ValueError("ClusterBootstrap needs at least one row; got empty groups. Pass the patient id "
                             "of every scored row, e.g. ClusterBootstrap(df['patient_id'], 1000).")
        if pd.isna(g).any():
            raise ValueError(f"ClusterBootstrap groups must name a patient for every row; got {int(pd.isna(g).sum())}"
                             " missing ids. Drop those rows or fill their patient id first.")
        for name, v in (("n_bootstrap", n_bootstrap), ("chunk_size", chunk_size)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"ClusterBootstrap.{name} must be an integer >= 1; got {v!r}. "
                                 f"Example: ClusterBootstrap(groups, n_bootstrap=1000, chunk_size=64).")
        codes, patients = pd.factorize(g, sort=True)
        n_pat = len(patients)
        rng = np.random.default_rng(random_state)
        counts = np.empty((n_bootstrap, n_pat), dtype=np.int16 if n_pat <= np.iinfo(np.int16).max else np.int32)
        step = max(1, 2 ** 22 // n_pat)        # draw in blocks so the int64 draws stay small
        for s in range(0, n_bootstrap, step):
            k = min(step, n_bootstrap - s)
            draws = rng.integers(0, n_pat, size=(k, n_pat)) + (np.arange(k) * n_pat)[:, None]
            counts[s:s + k] = np.bincount(draws.ravel(), minlength=k * n_pat).reshape(k, n_pat)
        self._patients = np.asarray(patients, dtype=object)
        self._codes = codes.astype(np.int32 if n_pat <= np.iinfo(np.int32).max else np.int64)
        self._counts = counts
        for a in (self._patients, self._codes, self._counts):
            a.setflags(write=False)            # shared between models: nobody may alter the draws
        self._random_state = random_state
        self._chunk_size = int(chunk_size)

    @classmethod
    def from_config(cls, groups, config: EvaluationConfig | None = None) -> ClusterBootstrap:
        """Resamples with ``config.n_bootstrap`` and ``config.random_state`` (default config if None).

        Raises
        ------
        ValueError
            If ``config.n_bootstrap`` is 0 (a cluster bootstrap needs at least one resample).
        """
        config = config or EvaluationConfig()
        if config.n_bootstrap < 1:
            raise ValueError("ClusterBootstrap.from_config needs EvaluationConfig.n_bootstrap >= 1; got "
                             f"{config.n_bootstrap}. Example: EvaluationConfig(n_bootstrap=1000).")
        return cls(groups, config.n_bootstrap, config.random_state)

    patients = property(lambda self: self._patients, doc="Distinct patient ids (n_patients,), sorted.")
    codes = property(lambda self: self._codes, doc="Row -> patient index (n_rows,).")
    counts = property(lambda self: self._counts, doc="Draw count per resample and patient (n_bootstrap, n_patients).")
    random_state = property(lambda self: self._random_state, doc="Seed of the draws.")
    chunk_size = property(lambda self: self._chunk_size, doc="Default resamples per yielded weight matrix.")
    n_bootstrap = property(lambda self: self._counts.shape[0], doc="Number of resamples.")
    n_patients = property(lambda self: self._counts.shape[1], doc="Number of distinct patients.")
    n_rows = property(lambda self: self._codes.shape[0], doc="Number of rows (patient-hours).")

    def __repr__(self) -> str:
        return (f"ClusterBootstrap(n_rows={self.n_rows}, n_patients={self.n_patients}, "
                f"n_bootstrap={self.n_bootstrap}, random_state={self._random_state!r})")

    def groups(self) -> np.ndarray:
        """Patient id of every row (n_rows,), as given to the constructor."""
        return self._patients[self._codes]

    def iter_row_weights(self, order: np.ndarray | None = None, chunk_size: int | None = None
                         ) -> Iterator[np.ndarray]:
        """Row weights of the resamples, ``chunk_size`` resamples at a time.

        Parameters
        ----------
        order : array (n_rows,) of int, optional
            Row order of the columns (e.g. rows sorted by score); default: the original order.
        chunk_size : int, optional
            Resamples per matrix (default: :attr:`chunk_size`).

        Yields
        ------
        ndarray (k, n_rows) of float64
            ``W[b, i]`` = draws of row ``i``'s patient in resample ``b``; ``k <= chunk_size``, and the
            chunks together cover all ``n_bootstrap`` resamples in order.
        """
        cols = self._codes if order is None else self._codes[np.asarray(order)]
        for c in self.iter_counts(chunk_size):
            # convert the small (k, n_patients) block, then gather: one float64 (k, n_rows) array per chunk
            yield c.astype(np.float64)[:, cols]

    def iter_counts(self, chunk_size: int | None = None) -> Iterator[np.ndarray]:
        """Blocks of :attr:`counts`, ``chunk_size`` resamples (rows) at a time.

        Yields
        ------
        ndarray (k, n_patients)
            Read-only views of consecutive resamples, ``k <= chunk_size``.
        """
        k = self._chunk_size if chunk_size is None else chunk_size
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"chunk_size must be an integer >= 1; got {chunk_size!r}. Example: chunk_size=64.")
        for s in range(0, self.n_bootstrap, int(k)):
            yield self._counts[s:s + k]

    def check_rows(self, n_rows: int, what: str = "y_true") -> None:
        """Raise ``ValueError`` unless ``n_rows`` equals the number of rows the resamples were built for."""
        if n_rows != self.n_rows:
            raise ValueError(f"{what} has {n_rows} rows but the ClusterBootstrap was built for {self.n_rows}. "
                             "Build it from the patient id of exactly these rows, in the same order: "
                             "ClusterBootstrap(patient_ids, n_bootstrap).")

    def check_partition(self, patient_ids) -> None:
        """Raise ``ValueError`` unless ``patient_ids`` groups the rows into the same patients as ``groups``."""
        ids = np.asarray(patient_ids, dtype=object).ravel()
        self.check_rows(len(ids), "patient_ids")
        inv, uniq = pd.factorize(ids)
        pairs = len(np.unique(inv.astype(np.int64) * self.n_patients + self._codes))
        if not (len(uniq) == self.n_patients == pairs):
            raise ValueError("patient_ids do not group the rows into the same patients as the ClusterBootstrap "
                             f"({len(uniq)} distinct ids vs {self.n_patients} patients, {pairs} id/patient pairs). "
                             "Build the ClusterBootstrap from these patient ids, in the same row order.")


class _RankedScores:
    """One model's rows sorted by score once, reused for every chunk of resample weights.

    Rows belong to clusters (patients; for plain sample weights every row is its own cluster) and
    a resample gives each cluster a weight. Linear metrics (Brier, log-loss, confusion counts) are
    then ``weights @ per_cluster``; AUROC and average precision only change at distinct scores that
    hold a positive row, so only those groups are kept.
    """

    __slots__ = ("sorted_codes", "pos_codes", "grp_end", "grp_prev", "pos_grp_end", "per_cluster")

    def __init__(self, y: np.ndarray, p: np.ndarray, threshold: float, codes: np.ndarray | None = None,
                 n_clusters: int | None = None) -> None:
        codes = np.arange(len(y)) if codes is None else codes
        order = np.argsort(p, kind="stable")
        ps, ys = p[order], y[order]
        new = np.r_[True, ps[1:] != ps[:-1]]                    # first sorted row of each distinct score
        grp = np.cumsum(new) - 1
        starts, ends = np.flatnonzero(new), np.r_[np.flatnonzero(new)[1:] - 1, len(ps) - 1]
        pos_rows = np.flatnonzero(ys == 1)
        gp = grp[pos_rows]
        keep = np.unique(gp)                                    # score groups holding a positive row
        self.sorted_codes = codes[order]
        self.pos_codes = self.sorted_codes[pos_rows]
        self.grp_end, self.grp_prev = ends[keep], starts[keep] - 1
        self.pos_grp_end = np.flatnonzero(np.r_[gp[1:] != gp[:-1], len(gp) > 0])
        pc = np.clip(p, _EPS, 1 - _EPS)
        pred, yb = p >= threshold, y == 1
        # per-row terms summed per patient, so every patient resample is one matrix product (no sklearn form)
        cols = [(p - y) ** 2, -(y * np.log(pc) + (1 - y) * np.log(1 - pc)),
                pred & yb, pred & ~yb, ~pred & yb, ~pred & ~yb, np.ones(len(y))]
        m = len(y) if n_clusters is None else n_clusters
        self.per_cluster = np.column_stack([np.bincount(codes, weights=np.asarray(c, float), minlength=m)
                                            for c in cols])


def _weighted_rows(r: _RankedScores, C: np.ndarray, which: str | None = None) -> dict[str, np.ndarray]:
    """Weighted metrics for every row of cluster weights ``C`` (k, n_clusters); NaN where undefined.

    AUROC is the weighted Mann-Whitney statistic with ties counted one half (the trapezoid under the
    ROC curve); AUPRC is scikit-learn's average precision, with tied scores forming one step.
    """
    out = {}
    lin = C @ r.per_cluster                                     # (k, 7): sums of the columns above
    total = lin[:, 6]
    P, N = lin[:, 2] + lin[:, 4], lin[:, 3] + lin[:, 5]
    with np.errstate(invalid="ignore", divide="ignore"):
        if which in (None, "auroc", "auprc"):
            cw = np.cumsum(C[:, r.sorted_codes], axis=1)        # weight with score <= each sorted row
            w_end = cw[:, r.grp_end]
            w_prev = cw[:, np.maximum(r.grp_prev, 0)] * (r.grp_prev >= 0)
            cp = np.cumsum(C[:, r.pos_codes], axis=1)[:, r.pos_grp_end]   # positives with score <= group
            pos = np.diff(cp, axis=1, prepend=0.0)
            neg = w_end - w_prev - pos                          # negatives tied with each group
            cn = w_end - cp                                     # negatives with score <= group
            ok = (P > 0) & (N > 0)
            if which in (None, "auroc"):
                out["auroc"] = np.where(ok, np.sum(pos * (cn - 0.5 * neg), axis=1) / (P * N), np.nan)
            if which in (None, "auprc"):
                tp = P[:, None] - cp + pos                      # predicted positive at score >= group
                fp = N[:, None] - cn + neg
                step = np.where(pos > 0, pos * tp / np.where(pos > 0, tp + fp, 1.0), 0.0)
                out["auprc"] = np.where(ok, step.sum(axis=1) / P, np.nan)
        if which in (None, "brier"):
            out["brier"] = lin[:, 0] / total
        if which in (None, "log_loss"):
            out["log_loss"] = lin[:, 1] / total
        if which is None or which in THRESHOLD_METRICS:
            ratios = _ratios(lin[:, 2], lin[:, 3], lin[:, 4], lin[:, 5])
            out.update({k: v for k, v in ratios.items() if which in (None, k)})
    return out


def _weighted_metric_rows(y_true, y_score, W, threshold: float = 0.5, which: str | None = None
                          ) -> dict[str, np.ndarray]:
    """Metrics of :data:`METRICS` for every row of sample weights ``W`` (k, n); NaN where undefined."""
    y, p = _check_arrays(y_true, y_score)
    return _weighted_rows(_RankedScores(y, p, threshold), np.asarray(W, dtype=float), which)


def _cluster_rows(y: np.ndarray, p: np.ndarray, threshold: float, boot: ClusterBootstrap,
                  which: str | None = None) -> dict[str, np.ndarray]:
    """Metric values of every cluster resample, chunk by chunk: dict metric -> (n_bootstrap,)."""
    boot.check_rows(len(y))
    r = _RankedScores(y, p, threshold, boot.codes, boot.n_patients)
    parts = [_weighted_rows(r, C.astype(np.float64), which) for C in boot.iter_counts()]
    return {k: np.concatenate([d[k] for d in parts]) for k in parts[0]}


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}. Example: metric='auroc'.")


def cluster_bootstrap_metrics(y_true, y_score, threshold: float, boot: ClusterBootstrap,
                              ci_level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile CI of every metric in :data:`METRICS` over patient-level (cluster) resamples.

    Parameters
    ----------
    y_true : array (n_rows,) of 0/1
    y_score : array (n_rows,)
        Risk of every row (patient-hour).
    threshold : float
        Rows with ``y_score >= threshold`` are predicted positive.
    boot : ClusterBootstrap
        Built from the patient id of exactly these rows, in this order.
    ci_level : float

    Returns
    -------
    dict of str to (low, high)
        Same keys as :func:`bootstrap_metrics`; (NaN, NaN) when no resample defines a metric.
        Each resample weights every row by its patient's draw count, so weighted AUROC, average
        precision, Brier score, log-loss and the threshold metrics use weighted counts.

    Raises
    ------
    ValueError
        If the rows do not match ``boot`` or the labels / scores are invalid.

    Examples
    --------
    >>> boot = ClusterBootstrap([1, 1, 2, 2, 3, 3], n_bootstrap=200, random_state=0)
    >>> ci = cluster_bootstrap_metrics([0, 1, 0, 0, 1, 1], [.2, .7, .1, .3, .6, .9], 0.5, boot)
    >>> sorted(ci) == sorted(METRICS)
    True
    """
    y, p = _check_arrays(y_true, y_score)
    return _percentile_ci(_cluster_rows(y, p, threshold, boot), ci_level)


def cluster_paired_bootstrap(y_true, y_score_a, y_score_b, boot: ClusterBootstrap, metric: str = "auroc",
                             ci_level: float = 0.95, thresholds: tuple[float, float] = (0.5, 0.5)
                             ) -> dict[str, float]:
    """Patient-level bootstrap distribution of ``metric(a) - metric(b)`` on shared resamples.

    Same contract as :func:`paired_bootstrap`, but whole patients (all their rows) are resampled.

    Parameters
    ----------
    y_true : array (n_rows,) of 0/1
    y_score_a, y_score_b : array (n_rows,)
        Risks of the two models on the same rows.
    boot : ClusterBootstrap
        Built from these rows' patient ids; the same draws are used for both models.
    metric : str
        One of :data:`METRICS`.
    ci_level : float
    thresholds : (float, float)
        Decision thresholds of a and b (threshold metrics only).

    Returns
    -------
    dict
        ``difference`` (a - b on all rows), ``ci_low``, ``ci_high`` and a two-sided ``p_value``
        (twice the share of resamples on the other side of zero, capped at 1).

    Raises
    ------
    ValueError
        If ``metric`` is unknown or the rows do not match ``boot``.
    """
    _check_metric(metric)
    y, pa = _check_arrays(y_true, y_score_a)
    _, pb = _check_arrays(y_true, y_score_b)
    if pa.shape != pb.shape:
        raise ValueError(f"y_score_a and y_score_b must have the same length; got {len(pa)} and {len(pb)}.")
    da = _cluster_rows(y, pa, thresholds[0], boot, metric)[metric]
    db = _cluster_rows(y, pb, thresholds[1], boot, metric)[metric]
    ones = np.ones((1, len(y)))
    full = _weighted_metric_rows(y, pa, ones, thresholds[0], metric)[metric][0] - \
        _weighted_metric_rows(y, pb, ones, thresholds[1], metric)[metric][0]
    return _paired_summary(full, da - db, ci_level)


# --------------------------------------------------------------------------------------------
# alarms (online task)
# --------------------------------------------------------------------------------------------
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
    y, r = _check_arrays(y_true, risk)
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
        One id per row: the patient (stay task), or the row's patient (online task, many rows each).
    label : str
        Human-readable model name.
    extra : dict
        More JSON-able facts copied into :meth:`summary`.
    times : ndarray (n,) of float, optional
        Online (per patient-hour) task only: the hour of each row on the stay's time axis. ``None``
        for the stay task, where every row is one patient.
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
    times: np.ndarray | None = None

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
        # not sklearn.calibration.calibration_curve: it returns no bin counts and puts risks on an edge in the lower bin
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
        """Flat JSON-able dict: metrics, ``<metric>_ci`` pairs and the threshold.

        Stay task: ``n_patients`` and ``n_positive`` count rows (one per patient). Online task
        (``times`` set): ``n_hours`` counts rows, ``n_patients`` distinct patients, ``n_positive``
        positive rows (hours) and ``n_positive_patients`` patients with at least one positive hour.
        """
        out = {k: _num(v) for k, v in self.metrics.items()}
        out.update({f"{k}_ci": [_num(v[0]), _num(v[1])] for k, v in self.ci.items()})
        out["threshold"] = float(self.threshold)
        if self.times is None:
            out["n_patients"] = int(len(self.y_true))
        else:
            ids = np.asarray(self.patient_ids, dtype=object)
            out["n_hours"] = int(len(self.y_true))
            out["n_patients"] = int(len(pd.unique(ids)))
            out["n_positive_patients"] = int(len(pd.unique(ids[np.asarray(self.y_true) == 1])))
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
             config: EvaluationConfig | None = None, label: str = "", idx: np.ndarray | None = None,
             *, clusters: ClusterBootstrap | None = None, times=None) -> EvaluationResult:
    """Metrics with bootstrap CIs for one model's test predictions.

    Parameters
    ----------
    y_proba : array (n,) or (n, 2)
        Risk, or ``predict_proba`` output (column 1 is used).
    idx : array (n_bootstrap, n), optional
        Shared resample indices (default: drawn from ``config``).
    clusters : ClusterBootstrap, optional
        Online task (rows are patient-hours): CIs come from this patient-level bootstrap, so rows
        of one patient are resampled together. Its own ``n_bootstrap`` and seed are used (even
        when ``config.n_bootstrap`` is 0); ``config.ci_level`` still applies. Default ``None``:
        row resampling as for the stay task.
    times : array (n,), optional
        Online task: each row's hour, stored as :attr:`EvaluationResult.times`.

    Returns
    -------
    EvaluationResult
        ``patient_ids`` holds one id per row; with ``clusters`` and no ``patient_ids`` it is the
        patient id of every row taken from ``clusters``.

    Raises
    ------
    ValueError
        If ``idx`` and ``clusters`` are both given, or ``clusters``/``patient_ids``/``times`` do not
        match the rows.
    """
    config = config or EvaluationConfig()
    p = np.asarray(y_proba, dtype=float)
    p = p[:, 1] if p.ndim == 2 else p
    y, p = _check_arrays(y_true, p)
    if clusters is not None and idx is not None:
        raise ValueError("evaluate got both idx (row resamples) and clusters (patient resamples); pass one. "
                         "Use clusters= for patient-hour rows, idx= for one row per patient.")
    if clusters is not None and patient_ids is not None:
        clusters.check_partition(patient_ids)
    m = binary_metrics(y, p, threshold)
    ci = {}
    if clusters is not None:
        ci = cluster_bootstrap_metrics(y, p, threshold, clusters, config.ci_level)
    elif config.n_bootstrap > 0:
        if idx is None:
            idx = bootstrap_indices(len(y), config.n_bootstrap, config.random_state)
        ci = bootstrap_metrics(y, p, threshold, idx, config.ci_level)
    if patient_ids is not None:
        ids = np.asarray(patient_ids, dtype=object)
    elif clusters is not None:
        ids = clusters.groups()
    else:
        ids = np.arange(len(y)).astype(str)
    t = None
    if times is not None:
        t = np.asarray(times, dtype=float).ravel()
        if t.shape != y.shape:
            raise ValueError(f"times must give one hour per row; got {t.shape[0]} times for {y.shape[0]} rows. "
                             "Pass the hour of every scored patient-hour, in the same order as y_true.")
    return EvaluationResult(model_name, m, ci, float(threshold), y, p, ids, label or model_name, times=t)


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
            idx: np.ndarray | None = None, *, clusters: ClusterBootstrap | None = None) -> ComparisonResult:
    """Paired AUROC comparison of ``result`` against ``reference`` (same patients, same order).

    The sentence uses DeLong's p-value and the paired-bootstrap confidence interval.

    With ``clusters`` (online task: rows are patient-hours) the interval and the p-value both come
    from the paired patient-level bootstrap (:func:`cluster_paired_bootstrap`), and ``p_delong``
    is NaN: DeLong's variance treats every row as an independent observation, but the hours of one
    stay share the patient and move together, so it would understate the variance and give
    p-values that are too small. Resampling whole patients keeps that correlation.

    Raises
    ------
    ValueError
        If the two results are not on the same patients (and, with ``clusters``, the same hours),
        or if ``idx`` and ``clusters`` are both given.
    """
    config = config or EvaluationConfig()
    if len(result.patient_ids) != len(reference.patient_ids) or \
            not np.array_equal(result.patient_ids, reference.patient_ids):
        raise ValueError("Paired comparison needs both models scored on the same patients in the same order.")
    y = result.y_true
    if clusters is not None:
        return _compare_clustered(result, reference, config, idx, clusters)
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


def _compare_clustered(result: EvaluationResult, reference: EvaluationResult, config: EvaluationConfig,
                       idx: np.ndarray | None, clusters: ClusterBootstrap) -> ComparisonResult:
    if idx is not None:
        raise ValueError("compare got both idx (row resamples) and clusters (patient resamples); pass one. "
                         "Use clusters= for patient-hour rows, idx= for one row per patient.")
    if (result.times is None) != (reference.times is None) or \
            (result.times is not None and not np.array_equal(result.times, reference.times, equal_nan=True)):
        raise ValueError("Paired comparison needs both models scored on the same patient-hours; their times "
                         "differ. Score both models on the same rows, in the same order.")
    clusters.check_partition(result.patient_ids)
    b = cluster_paired_bootstrap(result.y_true, result.y_proba, reference.y_proba, clusters, "auroc",
                                 config.ci_level)
    sentence = describe_comparison(result.label, reference.label, b["difference"], b["ci_low"], b["ci_high"],
                                   b["p_value"])
    return ComparisonResult(result.model_name, reference.model_name, "auroc", b["difference"], b["ci_low"],
                            b["ci_high"], b["p_value"], float("nan"), sentence)

