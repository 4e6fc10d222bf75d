"""The cluster (patient) bootstrap for rows that are patient-hours (online task).

Rows of one patient are correlated, so :class:`ClusterBootstrap` resamples patients, not rows, and
weights each row by its patient's draw count; the weighted metrics are vectorised over chunks of
resamples, so 1000 resamples of 40,000 rows never form one big matrix.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from core.config import EvaluationConfig
from core.evaluation.bootstrap import paired_summary, percentile_ci
from core.evaluation.point_metrics import METRICS, PROBA_EPS, THRESHOLD_METRICS, check_arrays, confusion_ratios

__all__ = ["ClusterBootstrap", "cluster_bootstrap_metrics", "cluster_paired_bootstrap"]


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
        pc = np.clip(p, PROBA_EPS, 1 - PROBA_EPS)
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
            ratios = confusion_ratios(lin[:, 2], lin[:, 3], lin[:, 4], lin[:, 5])
            out.update({k: v for k, v in ratios.items() if which in (None, k)})
    return out


def _weighted_metric_rows(y_true, y_score, W, threshold: float = 0.5, which: str | None = None
                          ) -> dict[str, np.ndarray]:
    """Metrics of :data:`METRICS` for every row of sample weights ``W`` (k, n); NaN where undefined."""
    y, p = check_arrays(y_true, y_score)
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
        Same keys as :func:`~core.evaluation.bootstrap.bootstrap_metrics`; (NaN, NaN) when no resample defines a metric.
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
    y, p = check_arrays(y_true, y_score)
    return percentile_ci(_cluster_rows(y, p, threshold, boot), ci_level)


def cluster_paired_bootstrap(y_true, y_score_a, y_score_b, boot: ClusterBootstrap, metric: str = "auroc",
                             ci_level: float = 0.95, thresholds: tuple[float, float] = (0.5, 0.5)
                             ) -> dict[str, float]:
    """Patient-level bootstrap distribution of ``metric(a) - metric(b)`` on shared resamples.

    Same contract as :func:`~core.evaluation.bootstrap.paired_bootstrap`, but whole patients (all their rows) are
    resampled.

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
    y, pa = check_arrays(y_true, y_score_a)
    _, pb = check_arrays(y_true, y_score_b)
    if pa.shape != pb.shape:
        raise ValueError(f"y_score_a and y_score_b must have the same length; got {len(pa)} and {len(pb)}.")
    da = _cluster_rows(y, pa, thresholds[0], boot, metric)[metric]
    db = _cluster_rows(y, pb, thresholds[1], boot, metric)[metric]
    ones = np.ones((1, len(y)))
    full = _weighted_metric_rows(y, pa, ones, thresholds[0], metric)[metric][0] - \
        _weighted_metric_rows(y, pb, ones, thresholds[1], metric)[metric][0]
    return paired_summary(full, da - db, ci_level)
