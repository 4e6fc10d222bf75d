"""The two task shapes of the time-order analysis, as strategies of its one flow (:func:`run_timeorder`).

The flow is the same for both shapes: one batch of fits, the ablation's three arms, the early-prediction
points, the gap and the tiers, all on the same test rows. What differs follows from the unit a model scores:

* **stay** (:class:`StayTask`): one outcome per stay, so a test row is a patient. Rows are resampled one by
  one (and DeLong is valid); each shorter horizon is a refit on the features of the first ``h`` hours.
* **online** (:class:`OnlineTask`): a label every hour, so a test row is a patient-hour. The bins are shuffled
  as for stays and each hour's label moves with its bin, so every (hour's data, hour's label) pair is kept and
  only the order of the history changes (hours since admission are recomputed on the shuffled grid, so they go
  too); the shuffled arm is paired with the ordered one hour by hour. A patient's hours are resampled together
  (DeLong treats rows as independent, so it is not reported), and the early points are the full-window models
  scored on the test hours before ``h``.

:func:`task_shape` picks the strategy from the features' ``task``; a pooling object
(:class:`PatientPooling`, :class:`ClusterPooling`) turns test risks into CIs and paired differences.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.analysis.timeorder.config import TimeOrderConfig
from core.analysis.timeorder.results import AblationResult, GapResult
from core.config import EvaluationConfig, FeatureConfig
from core.data.cohort import Cohort
from core.evaluation.metrics import (ClusterBootstrap, bootstrap_indices, bootstrap_metrics, cluster_bootstrap_metrics,
                                     cluster_paired_bootstrap, delong_test, paired_bootstrap)
from core.exceptions import CohortError, InternalError
from core.features import FeatureSet
from core.models import registry
from core.training.protocol import ProtocolResult

__all__ = ["TaskShape", "StayTask", "OnlineTask", "PatientPooling", "ClusterPooling", "task_shape", "auroc_score",
           "auprc_score", "best_by_validation"]


def auroc_score(y: np.ndarray, p: np.ndarray) -> float:
    """AUROC of risks ``p`` for labels ``y``; NaN when ``y`` holds one outcome only."""
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def auprc_score(y: np.ndarray, p: np.ndarray) -> float:
    """AUPRC (average precision) of risks ``p`` for labels ``y``; NaN when ``y`` holds one outcome only."""
    from sklearn.metrics import average_precision_score
    return float(average_precision_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def best_by_validation(names, res: ProtocolResult) -> str:
    """The model of ``names`` with the highest validation AUROC in ``res`` (NaN counts as lowest)."""
    return max(names, key=lambda n: np.nan_to_num(res.validation[n].metrics["auroc"], nan=-1.0))


# ----------------------------------------------------------------------------------------------
# pooling: test risks -> CIs and paired differences, shared by every arm and model (paired)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PatientPooling:
    """Stays: rows are patients, resampled by the shared indices ``idx`` (n_bootstrap, n_rows); DeLong is valid."""

    idx: np.ndarray
    ci_level: float

    def metrics(self, y: np.ndarray, p: np.ndarray) -> dict:
        """Bootstrap CI of every metric of the risks ``p`` (threshold 0.5), keyed by metric."""
        return bootstrap_metrics(y, p, 0.5, self.idx, self.ci_level)

    def paired(self, y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray) -> dict:
        """AUROC of ``p_a`` minus that of ``p_b``: ``difference``, ``ci_low``, ``ci_high``, ``p_value``."""
        return paired_bootstrap(y, p_a, p_b, self.idx, "auroc", self.ci_level)

    def delong(self, y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray) -> dict:
        """DeLong's test of the same difference (:func:`core.evaluation.metrics.delong_test`)."""
        return delong_test(y, p_a, p_b)


@dataclass(frozen=True)
class ClusterPooling:
    """Patient-hours: the hours of one patient are resampled together (``clusters``); no DeLong."""

    clusters: ClusterBootstrap
    ci_level: float

    def metrics(self, y: np.ndarray, p: np.ndarray) -> dict:
        """Patient-level bootstrap CI of every metric of the risks ``p`` (threshold 0.5), keyed by metric."""
        return cluster_bootstrap_metrics(y, p, 0.5, self.clusters, self.ci_level)

    def paired(self, y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray) -> dict:
        """AUROC of ``p_a`` minus that of ``p_b`` over patient resamples: ``difference``, ``ci_low``, ``ci_high``,
        ``p_value``."""
        return cluster_paired_bootstrap(y, p_a, p_b, self.clusters, "auroc", self.ci_level)

    def delong(self, y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray) -> None:
        """``None``: DeLong treats every row as independent, and a patient's hours are not."""
        return None


# ----------------------------------------------------------------------------------------------
# the task shapes
# ----------------------------------------------------------------------------------------------
class TaskShape(ABC):
    """What the flow of the analysis asks of a task shape; stateless, one instance per shape."""

    #: the verdict's first words.
    verdict_head = ""
    #: the verdict's words when no gap was measured.
    no_gap_note = ""
    #: whether the verdict says that a gap without an ablation effect is not time order.
    gap_caveat = False

    def check_cohort(self, cohort: Cohort) -> None:
        """Refuse a cohort this shape cannot analyse (before anything is split or fitted)."""

    def check_split(self, cohort: Cohort, splits: dict) -> None:
        """Refuse a split whose test rows cannot give an AUROC (before anything is fitted)."""

    @abstractmethod
    def fitted_hours(self, config: TimeOrderConfig) -> tuple[float, ...]:
        """The horizons whose models are fitted (the full window among them)."""

    @abstractmethod
    def horizon_rows(self, config: TimeOrderConfig, by_hours: dict) -> list[dict]:
        """The early-prediction points (rows of ``TimeOrderResult.horizons``) from the fits of ``by_hours``
        (hours -> :class:`ProtocolResult`; the full window always there)."""

    @abstractmethod
    def pair_shuffled(self, test: FeatureSet, shuffled: FeatureSet, positions: pd.DataFrame) -> np.ndarray:
        """Row of ``shuffled`` (the shuffled test set) that holds each row of ``test``.

        ``positions`` is :func:`shuffle_time_bins`'s permutation (old step -> new step, per patient).
        """

    @abstractmethod
    def draw_resamples(self, test: FeatureSet, evaluation: EvaluationConfig) -> tuple:
        """``(idx, clusters)`` of the test rows, as :func:`core.training.protocol.run_protocols` draws them."""

    @abstractmethod
    def pooling(self, full: ProtocolResult, config: TimeOrderConfig) -> PatientPooling | ClusterPooling:
        """How test risks are pooled, on the resamples of the full-window fits ``full`` (shared: paired)."""

    def verdict(self, ablation: AblationResult, gap: GapResult | None) -> str:
        """The analysis's verdict: the ablation's sentence, then the gap's (``gap`` may be ``None``)."""
        text = self.verdict_head + ablation.verdict + (" " + gap.verdict if gap is not None else self.no_gap_note)
        if self.gap_caveat and gap is not None and gap.evidence != "none" and ablation.evidence == "none":
            # the gap compares model families; only the ablation isolates order
            text += (" Since shuffling the hours costs the sequence model nothing, this gap comes from how the "
                     "models use the values (levels, missingness), not from time order.")
        return text


def _row(spec, hours: float, auroc: float, auroc_ci, auprc: float, auprc_ci, validation_auroc: float,
         train_seconds: float) -> dict:
    """One early-prediction point: a row of ``TimeOrderResult.horizons``."""
    return {"model": spec.name, "label": spec.label,
            "kind": "sequence" if spec.input_kind == "sequence" else "order-free", "hours": hours,
            "auroc": auroc, "auroc_low": auroc_ci[0], "auroc_high": auroc_ci[1], "auprc": auprc,
            "auprc_low": auprc_ci[0], "auprc_high": auprc_ci[1], "validation_auroc": validation_auroc,
            "train_seconds": train_seconds}


class StayTask(TaskShape):
    """One outcome per stay: a test row is a patient (see the module's docstring)."""

    no_gap_note = " (No gap measured: include both a sequence and an order-free model.)"
    gap_caveat = True

    def check_split(self, cohort: Cohort, splits: dict) -> None:
        y = cohort.labels.loc[splits["test"]].to_numpy().astype(int)
        if len(np.unique(y)) < 2:
            raise CohortError("The test patients hold only one outcome, so AUROC is undefined. Use more patients "
                              "(max_patients=None) or a larger test_size.")

    def fitted_hours(self, config: TimeOrderConfig) -> tuple[float, ...]:
        return config.hours()                    # every horizon is a refit on its own features

    def horizon_rows(self, config: TimeOrderConfig, by_hours: dict) -> list[dict]:
        rows = []
        for h in config.hours():
            res = by_hours[h]
            for spec in map(registry.get, config.models_at(h)):
                ev = res.test[spec.name]
                rows.append(_row(spec, h, ev.metrics["auroc"], ev.ci["auroc"], ev.metrics["auprc"], ev.ci["auprc"],
                                 res.validation[spec.name].metrics["auroc"], res.train_seconds[spec.name]))
        return rows

    def pair_shuffled(self, test: FeatureSet, shuffled: FeatureSet, positions: pd.DataFrame) -> np.ndarray:
        # a stay is one row whatever the order of its hours: the same patients, in the same order
        if not np.array_equal(shuffled.unit_ids, test.unit_ids):
            raise InternalError("The shuffled test patients are not the ordered ones in the same order; the two "
                                "arms of the ablation were built from different splits.")
        return np.arange(len(test.unit_ids))

    def draw_resamples(self, test: FeatureSet, evaluation: EvaluationConfig) -> tuple:
        return bootstrap_indices(len(test.unit_ids), evaluation.n_bootstrap, evaluation.random_state), None

    def pooling(self, full: ProtocolResult, config: TimeOrderConfig) -> PatientPooling:
        return PatientPooling(full.bootstrap, config.evaluation.ci_level)


class OnlineTask(TaskShape):
    """A label every hour: a test row is a patient-hour (see the module's docstring)."""

    verdict_head = "Online task (a risk every hour; AUROC pooled over test patient-hours, CIs over patients). "

    def check_cohort(self, cohort: Cohort) -> None:
        if not cohort.is_online:
            raise CohortError("The online time-order analysis needs per-hour labels: load the data with the online "
                              "task (a label for every hour), or use stay-task features.")

    def fitted_hours(self, config: TimeOrderConfig) -> tuple[float, ...]:
        return (config.window_hours,)            # early points are the full-window models on the early hours

    def horizon_rows(self, config: TimeOrderConfig, by_hours: dict) -> list[dict]:
        window = config.window_hours
        full = by_hours[window]
        test, val = full.features["test"], full.features["validation"]
        rows = []
        for h in config.hours():                   # early in the stay: the test hours before h
            keep = test.unit_time < h if h < window else np.ones(len(test.unit_time), bool)
            if not keep.any():
                continue
            boot = ClusterBootstrap.from_config(test.unit_ids[keep], config.evaluation)
            vkeep = val.unit_time < h if h < window else np.ones(len(val.unit_time), bool)
            for spec in map(registry.get, config.models_at(h)):
                ev, vev = full.test[spec.name], full.validation[spec.name]
                y, p = ev.y_true[keep], ev.y_proba[keep]
                ci = cluster_bootstrap_metrics(y, p, ev.threshold, boot, config.evaluation.ci_level)
                rows.append(_row(spec, h, auroc_score(y, p), ci["auroc"], auprc_score(y, p), ci["auprc"],
                                 auroc_score(vev.y_true[vkeep], vev.y_proba[vkeep]), full.train_seconds[spec.name]))
        return rows

    def pair_shuffled(self, test: FeatureSet, shuffled: FeatureSet, positions: pd.DataFrame) -> np.ndarray:
        # each ordered test hour, found at its new step in the shuffled stay
        moved = positions.loc[test.unit_ids].to_numpy()[np.arange(len(test.unit_step)), test.unit_step]
        T = test.X_seq.shape[1]
        where = pd.Series(np.arange(len(shuffled.unit_step)), index=shuffled.unit_patient * T + shuffled.unit_step)
        pair = where.reindex(test.unit_patient * T + moved).to_numpy()
        if np.isnan(pair.astype(float)).any():
            raise InternalError("Some test hours could not be matched to their shuffled place: the shuffled test set "
                                "lacks hours the permutation moved there.")
        return pair.astype(int)

    def draw_resamples(self, test: FeatureSet, evaluation: EvaluationConfig) -> tuple:
        return None, ClusterBootstrap.from_config(test.unit_ids, evaluation)

    def pooling(self, full: ProtocolResult, config: TimeOrderConfig) -> ClusterPooling:
        clusters = full.clusters
        if clusters is None:
            clusters = self.draw_resamples(full.features["test"], config.evaluation)[1]
        return ClusterPooling(clusters, config.evaluation.ci_level)


def task_shape(features: FeatureConfig) -> TaskShape:
    """The strategy of ``features.task``: :class:`OnlineTask` for ``"online"``, else :class:`StayTask`."""
    return OnlineTask() if features.task == "online" else StayTask()
