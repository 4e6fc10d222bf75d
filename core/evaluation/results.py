"""The result types of evaluation: one model on one set of patients, and a paired comparison of two."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn import metrics as skm

__all__ = ["EvaluationResult", "ComparisonResult"]


@dataclass
class EvaluationResult:
    """One model on one set of patients.

    Attributes
    ----------
    model_name : str
    metrics : dict of str to float (see :data:`~core.evaluation.point_metrics.METRICS`)
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
    AUROC, ``p_bootstrap`` the paired bootstrap p-value; ``p_holm`` the p-value of the test the sentence uses,
    Holm-adjusted over every comparison of the run (:func:`core.evaluation.metrics.adjust_for_multiplicity`;
    NaN until adjusted).
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
    p_holm: float = float("nan")

    @property
    def p_value(self) -> float:
        """The p-value of the test the sentence names: DeLong's where there is one, else the paired bootstrap's."""
        return self.p_delong if np.isfinite(self.p_delong) else self.p_bootstrap

    def to_dict(self) -> dict:
        return {k: (_num(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()}
