"""Metrics, bootstrap confidence intervals, thresholds and paired model comparisons.

Everything here works on arrays of labels and positive-class probabilities, so it is model-agnostic.
:func:`evaluate` scores one model's test predictions and :func:`compare` two models on the same
patients; the parts they use live in modules of their own, and every public name is importable from
here too:

* :mod:`~core.evaluation.point_metrics`: AUROC, AUPRC, Brier, log-loss, metrics at a threshold, choosing it;
* :mod:`~core.evaluation.bootstrap`: bootstrap intervals and paired comparisons, one row per patient;
* :mod:`~core.evaluation.cluster`: the same when rows are patient-hours (:class:`ClusterBootstrap` resamples
  patients, not rows);
* :mod:`~core.evaluation.delong`: DeLong's test of two correlated AUROCs;
* :mod:`~core.evaluation.alarms`: :func:`alarm_metrics`, the alarms a model would raise at its threshold;
* :mod:`~core.evaluation.results`: :class:`EvaluationResult` and :class:`ComparisonResult`.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from core.config import EvaluationConfig
from core.evaluation.alarms import alarm_metrics
from core.evaluation.bootstrap import bootstrap_indices, bootstrap_metrics, paired_bootstrap
from core.evaluation.cluster import ClusterBootstrap, cluster_bootstrap_metrics, cluster_paired_bootstrap
from core.evaluation.delong import delong_auc_variance, delong_test
from core.evaluation.multiplicity import holm
from core.evaluation.point_metrics import (METRICS, THRESHOLD_METRICS, binary_metrics, check_arrays,
                                           choose_threshold, threshold_metrics)
from core.evaluation.results import ComparisonResult, EvaluationResult

__all__ = ["EvaluationResult", "ComparisonResult", "binary_metrics", "threshold_metrics", "choose_threshold",
           "bootstrap_indices", "bootstrap_metrics", "delong_test", "delong_auc_variance", "paired_bootstrap",
           "evaluate", "compare", "METRICS", "THRESHOLD_METRICS", "describe_comparison",
           "ClusterBootstrap", "cluster_bootstrap_metrics", "cluster_paired_bootstrap", "alarm_metrics",
           "adjust_for_multiplicity"]


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
    y, p = check_arrays(y_true, p)
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


def _ptext(p: float) -> str:
    return f"p={p:.3f}" if p >= 0.001 else "p<0.001"


def describe_comparison(label: str, ref_label: str, diff: float, lo: float, hi: float, p: float,
                        metric: str = "AUROC", alpha: float = 0.05, p_adjusted: float | None = None,
                        n_tests: int = 1) -> str:
    """Plain words, e.g. "GRU vs gradient boosting: -0.009 AUROC [-0.021, 0.002], p=0.12: no significant difference".

    With ``p_adjusted`` (Holm over ``n_tests`` comparisons) the verdict follows the adjusted p-value, and the
    sentence shows both: "..., p=0.028, Holm-adjusted over 7 comparisons p=0.17: no significant difference".
    """
    decisive = p if p_adjusted is None else p_adjusted
    if not np.isfinite(decisive):
        verdict = "not testable"
    elif decisive < alpha:
        verdict = f"{label} is significantly {'better' if diff > 0 else 'worse'}"
    else:
        verdict = "no significant difference"
    ci = f" [{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else ""
    ptxt = _ptext(p) if np.isfinite(p) else "p not testable"
    if p_adjusted is not None and n_tests > 1 and np.isfinite(p_adjusted):
        ptxt += f", Holm-adjusted over {n_tests} comparisons {_ptext(p_adjusted)}"
    return f"{label} vs {ref_label}: {diff:+.3f} {metric}{ci}, {ptxt}: {verdict}"


def adjust_for_multiplicity(comparisons, labels: dict) -> list[ComparisonResult]:
    """The comparisons of one run against its reference with Holm-adjusted p-values (``p_holm``) and sentences
    whose verdicts follow them: seven models tested against one reference are seven tests, and an unadjusted
    p=0.03 among them is no evidence. ``labels``: ``{model name: label}`` for the sentences."""
    from dataclasses import replace
    comparisons = list(comparisons)
    adjusted = holm([c.p_value for c in comparisons])
    n = int(np.isfinite([c.p_value for c in comparisons]).sum())
    return [replace(c, p_holm=float(a), sentence=describe_comparison(
        labels.get(c.model_name, c.model_name), labels.get(c.reference_name, c.reference_name), c.difference,
        c.ci_low, c.ci_high, c.p_value, p_adjusted=float(a), n_tests=n)) for c, a in zip(comparisons, adjusted)]


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
