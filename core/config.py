"""Typed, frozen configuration objects. Defaults carry units; ``__post_init__`` checks them.

Every config is saved with results (``dataclasses.asdict``) so a run can be reasoned about.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DataConfig", "FeatureConfig", "SplitConfig", "EvaluationConfig", "TASKS", "SUMMARIES"]

_LAYOUTS = ("auto", "long", "wide")
#: task shapes: one label per stay, or one label per patient-hour.
TASKS = ("stay", "online")
_TIME_FORMATS = ("auto", "hours", "hhmm", "datetime")
#: what the tabular (classical) view summarises: order-free statistics, those plus *when* things happened,
#: or only when variables were measured (no value at all).
SUMMARIES = ("order_free", "time_aware", "missingness_only")


@dataclass(frozen=True)
class DataConfig:
    """How to read an events file (and an optional labels file) into a cohort.

    Column names left as ``None`` are auto-detected from common names
    (``patient_id``/``subject_id``/``RecordID``..., ``time``/``charttime``...,
    ``variable``/``Parameter``..., ``value``...). Every detected name can be
    overridden here.

    Parameters
    ----------
    target : str, optional
        Outcome column: in the labels file, or a column constant per patient in the events file.
    layout : {"auto", "long", "wide"}
        Long = one row per observation (patient, time, variable, value);
        wide = one row per time point, one column per variable.
    time_format : {"auto", "hours", "hhmm", "datetime"}
        Numbers are hours; ``HH:MM`` is elapsed hours:minutes; ISO date-times become hours since
        each patient's first record.
    sentinel_values : tuple of float
        Codes meaning "unknown" (default ``-1``). Applied to static attributes, and to a time
        series only when that variable has no other negative value (so a real -1, e.g. base
        excess, is kept). ``()`` disables.
    static_variables : tuple of str, optional
        Variables to treat as static attributes; ``None`` = auto (constant per patient and only
        at time 0, or a known descriptor name such as Age or Gender).
    max_time_hours : float
        Times beyond this (hours after the patient's first record) are excluded as absurd.
    min_patients, min_positives : int
        Fewest labelled patients / positives (and negatives) needed to train and test.
    task : {"stay", "online"}
        ``"stay"``: one label per patient. ``"online"``: a label for every patient-hour, either a 0/1
        column of the events file that varies by hour (``target``, e.g. ``SepsisLabel``) or an
        onset-time column of the labels file (hours since the patient's first record; empty = never)
        together with ``horizon_hours``.
    keep_implausible : bool
        Keep values outside their variable's plausible range (:mod:`core.data.plausibility`); by default
        they are reported per variable and excluded.
    horizon_hours : float, optional
        Online task: hours ``t`` with ``onset - horizon_hours <= t < onset`` are positive, earlier
        hours negative, hours from onset on are left out (and counted). With a label column, the
        hours by which the label precedes the event (SepsisLabel: 6), used for the alarm metrics.
    group_col : str, optional
        A column of the events file (long or wide layout) that is constant per patient and names
        a group of patients that belong together, e.g. ``subject_id`` for one person's several
        stays, or the stay a copied record came from. The patient split and the cross-validation
        folds keep each group on one side, and duplicate stays within one group do not block
        training. Never a feature. ``None``: every patient is its own group.
    """

    patient_col: str | None = None
    time_col: str | None = None
    variable_col: str | None = None
    value_col: str | None = None
    target: str | None = None
    label_patient_col: str | None = None
    layout: str = "auto"
    time_format: str = "auto"
    sentinel_values: tuple[float, ...] = (-1.0,)
    static_variables: tuple[str, ...] | None = None
    max_time_hours: float = 24.0 * 366
    min_patients: int = 20
    min_positives: int = 5
    task: str = "stay"
    horizon_hours: float | None = None
    keep_implausible: bool = False
    group_col: str | None = None

    def __post_init__(self) -> None:
        if self.group_col is not None and (not isinstance(self.group_col, str) or not self.group_col.strip()):
            raise ValueError(f"DataConfig.group_col must be a column name or None; got {self.group_col!r}. "
                             "Example: DataConfig(group_col='subject_id').")
        if self.task not in TASKS:
            raise ValueError(f"DataConfig.task must be one of {TASKS}; got {self.task!r}. "
                             "Example: DataConfig(task='online', target='SepsisLabel').")
        if self.horizon_hours is not None and not (np.isfinite(self.horizon_hours) and self.horizon_hours >= 0):
            raise ValueError(f"DataConfig.horizon_hours must be >= 0 hours; got {self.horizon_hours!r}. "
                             "Example: DataConfig(task='online', horizon_hours=6).")
        if self.layout not in _LAYOUTS:
            raise ValueError(f"DataConfig.layout must be one of {_LAYOUTS}; got {self.layout!r}. "
                             "Example: DataConfig(layout='long').")
        if self.time_format not in _TIME_FORMATS:
            raise ValueError(f"DataConfig.time_format must be one of {_TIME_FORMATS}; got {self.time_format!r}. "
                             "Example: DataConfig(time_format='hhmm').")
        if not self.max_time_hours > 0:
            raise ValueError(f"DataConfig.max_time_hours must be > 0; got {self.max_time_hours!r}. "
                             "Example: DataConfig(max_time_hours=720).")
        if self.min_patients < 2 or self.min_positives < 1:
            raise ValueError("DataConfig.min_patients must be >= 2 and min_positives >= 1; got "
                             f"{self.min_patients!r}, {self.min_positives!r}. Example: DataConfig(min_patients=20).")
        object.__setattr__(self, "sentinel_values", tuple(float(v) for v in self.sentinel_values))
        if self.static_variables is not None:
            object.__setattr__(self, "static_variables", tuple(self.static_variables))


@dataclass(frozen=True)
class FeatureConfig:
    """How events become model inputs (hourly sequences and per-patient summaries).

    Parameters
    ----------
    window_hours : float
        Hours after each patient's first record that are used (default 48).
    bin_hours : float
        Width of one sequence step in hours (default 1: an hourly grid).
    delta_cap_hours : float
        Time since the last observation is capped here, then log-scaled to [0, 1].
    clip_quantile : float
        Each variable's values are clipped to the training [q, 1-q] quantiles (robust to typos
        such as a heart rate of 2000). ``0`` disables.
    include_static : bool
        Append static attributes (Age, Gender, ...) with missing indicators.
    task : {"stay", "online"}
        ``"stay"``: one row of summaries per patient over the window. ``"online"``: one row per
        patient-hour (every hour with a row in the input, up to ``window_hours``, the stay cap), built
        only from data up to and including that hour.
    lookback_hours : tuple of float
        Online task: the classical models also see min/max/mean over the last ``k`` hours, per ``k``.
    summaries : {"order_free", "time_aware", "missingness_only"}
        What the tabular view holds (``core.features``): ``"order_free"`` (default) the usual per-variable
        statistics; ``"time_aware"`` those plus when things happened (hour of the min and of the max,
        least-squares slope per sub-window, mean / last / count over the last ``recent_hours``);
        ``"missingness_only"`` only when each variable was measured (counts, measured bins per
        sub-window, hours since the last measurement, measurement rate) and which static attributes
        are unknown: no value at all, in either view (the sequence view's value channels are 0).
    recent_hours : tuple of float
        ``summaries="time_aware"``: the last-``k``-hours statistics, per ``k`` (default 6 and 12 h).
    n_subwindows : int
        Stay task, ``summaries`` other than ``"order_free"``: the window is cut into this many equal
        sub-windows for the per-sub-window slopes (time-aware) or measured-bin counts (missingness).
    """

    window_hours: float = 48.0
    bin_hours: float = 1.0
    delta_cap_hours: float = 48.0
    clip_quantile: float = 0.005
    include_static: bool = True
    task: str = "stay"
    lookback_hours: tuple[float, ...] = (6.0, 24.0)
    summaries: str = "order_free"
    recent_hours: tuple[float, ...] = (6.0, 12.0)
    n_subwindows: int = 4

    def __post_init__(self) -> None:
        if self.summaries not in SUMMARIES:
            raise ValueError(f"FeatureConfig.summaries must be one of {SUMMARIES}; got {self.summaries!r}. "
                             "Example: FeatureConfig(summaries='time_aware').")
        try:
            recent = tuple(sorted({float(k) for k in self.recent_hours}))
        except (TypeError, ValueError):
            recent = ()
        if not recent or not all(np.isfinite(k) and k >= self.bin_hours for k in recent):
            raise ValueError(f"FeatureConfig.recent_hours must be hours >= bin_hours ({self.bin_hours}); got "
                             f"{self.recent_hours!r}. Example: FeatureConfig(recent_hours=(6, 12)).")
        object.__setattr__(self, "recent_hours", recent)
        if isinstance(self.n_subwindows, bool) or not isinstance(self.n_subwindows, (int, np.integer)) \
                or not 1 <= int(self.n_subwindows) <= 48:
            raise ValueError(f"FeatureConfig.n_subwindows must be a whole number in [1, 48]; got "
                             f"{self.n_subwindows!r}. Example: FeatureConfig(n_subwindows=4).")
        object.__setattr__(self, "n_subwindows", int(self.n_subwindows))
        if self.task not in TASKS:
            raise ValueError(f"FeatureConfig.task must be one of {TASKS}; got {self.task!r}. "
                             "Example: FeatureConfig(task='online', window_hours=336).")
        try:
            hours = tuple(float(k) for k in self.lookback_hours)
        except (TypeError, ValueError):
            hours = ()
        if not hours or not all(np.isfinite(k) and k >= self.bin_hours for k in hours):
            raise ValueError(f"FeatureConfig.lookback_hours must be hours >= bin_hours ({self.bin_hours}); got "
                             f"{self.lookback_hours!r}. "
                             "Example: FeatureConfig(lookback_hours=(6, 24)).")
        object.__setattr__(self, "lookback_hours", tuple(sorted(set(hours))))
        if not self.window_hours > 0:
            raise ValueError(f"FeatureConfig.window_hours must be > 0 hours; got {self.window_hours!r}. "
                             "Example: FeatureConfig(window_hours=48).")
        if not 0 < self.bin_hours <= self.window_hours:
            raise ValueError(f"FeatureConfig.bin_hours must be in (0, window_hours={self.window_hours}]; got "
                             f"{self.bin_hours!r}. Example: FeatureConfig(bin_hours=1).")
        if not self.delta_cap_hours > 0:
            raise ValueError(f"FeatureConfig.delta_cap_hours must be > 0; got {self.delta_cap_hours!r}. "
                             "Example: FeatureConfig(delta_cap_hours=48).")
        if not 0 <= self.clip_quantile < 0.5:
            raise ValueError(f"FeatureConfig.clip_quantile must be in [0, 0.5); got {self.clip_quantile!r}. "
                             "Example: FeatureConfig(clip_quantile=0.005), or 0 to disable.")

    @property
    def n_steps(self) -> int:
        """Number of sequence steps (``ceil(window_hours / bin_hours)``)."""
        import math
        return int(math.ceil(self.window_hours / self.bin_hours - 1e-9))

    def steps(self, time_hours) -> tuple[np.ndarray, np.ndarray]:
        """The step of each time and whether it lies in the window (the one hour binning of the product).

        Step ``k`` holds times in ``[k * bin_hours, (k + 1) * bin_hours)``; a time equal to
        ``window_hours`` falls in the last step. Times outside ``[0, window_hours]`` are not inside
        (their step is 0 and must be ignored).

        Returns
        -------
        (step, inside) : ndarray of int64 and ndarray of bool, each shaped like ``time_hours``.

        Examples
        --------
        >>> FeatureConfig(window_hours=3).steps([0.0, 0.5, 1.0, 3.0, 4.0])
        (array([0, 0, 1, 2, 0]), array([ True,  True,  True,  True, False]))
        """
        t = np.asarray(time_hours, dtype=float)
        inside = (t >= 0) & (t <= self.window_hours)
        step = np.minimum(np.floor(np.where(inside, t, 0.0) / self.bin_hours).astype(np.int64), self.n_steps - 1)
        return step, inside

    def valid_lengths(self, patient_index, time_hours, n_patients: int) -> np.ndarray:
        """Per patient: steps from 0 up to and including the last step holding any of the given times.

        Parameters
        ----------
        patient_index : array of int (n_rows,)
            Row of each time's patient in ``[0, n_patients)``; negative = not one of them (ignored).
        time_hours : array of float (n_rows,)
        n_patients : int

        Returns
        -------
        ndarray of int64 (n_patients,): 0 for a patient without any time in the window.
        """
        p = np.asarray(patient_index, dtype=np.int64)
        step, inside = self.steps(time_hours)
        keep = inside & (p >= 0)
        out = np.zeros(n_patients, dtype=np.int64)
        np.maximum.at(out, p[keep], step[keep] + 1)
        return out


@dataclass(frozen=True)
class SplitConfig:
    """How labelled patients are divided (by patient, stratified by label).

    Parameters
    ----------
    validation_size, test_size : float
        Fractions of patients for the validation split (chooses thresholds and the reference
        model) and the held-out test split (reported metrics). Training gets the rest (70% default).
    random_state : int
        Seed of the split.
    """

    validation_size: float = 0.15
    test_size: float = 0.15
    random_state: int = 0

    def __post_init__(self) -> None:
        for name in ("validation_size", "test_size"):
            v = getattr(self, name)
            if not 0.0 < v < 1.0:
                raise ValueError(f"SplitConfig.{name} must be a fraction in (0, 1); got {v!r}. "
                                 f"Example: SplitConfig({name}=0.15).")
        if self.validation_size + self.test_size >= 0.9:
            raise ValueError("SplitConfig.validation_size + test_size must leave at least 10% of patients for "
                             f"training; got {self.validation_size} + {self.test_size}. "
                             "Example: SplitConfig(validation_size=0.15, test_size=0.15).")


_THRESHOLD_RULES = ("se_ppv", "youden", "sensitivity")


@dataclass(frozen=True)
class EvaluationConfig:
    """How models are thresholded and how uncertainty is measured.

    Parameters
    ----------
    threshold_rule : {"se_ppv", "youden", "sensitivity"}
        How the decision threshold is chosen on validation patients: where sensitivity equals
        PPV (maximises min(Se, PPV), the PhysioNet 2012 event-1 score), Youden's J, or the
        highest threshold reaching ``target_sensitivity``.
    target_sensitivity : float
        Used by ``threshold_rule="sensitivity"``.
    n_bootstrap : int
        Bootstrap resamples for confidence intervals and paired tests (0 disables CIs).
    ci_level : float
        Confidence level of the intervals (default 0.95).
    random_state : int
        Seed of the bootstrap.
    """

    threshold_rule: str = "se_ppv"
    target_sensitivity: float = 0.8
    n_bootstrap: int = 1000
    ci_level: float = 0.95
    random_state: int = 0

    def __post_init__(self) -> None:
        if self.threshold_rule not in _THRESHOLD_RULES:
            raise ValueError(f"EvaluationConfig.threshold_rule must be one of {_THRESHOLD_RULES}; got "
                             f"{self.threshold_rule!r}. Example: EvaluationConfig(threshold_rule='youden').")
        if not 0.0 < self.target_sensitivity < 1.0:
            raise ValueError(f"EvaluationConfig.target_sensitivity must be in (0, 1); got "
                             f"{self.target_sensitivity!r}. Example: EvaluationConfig(target_sensitivity=0.8).")
        if self.n_bootstrap < 0:
            raise ValueError(f"EvaluationConfig.n_bootstrap must be >= 0; got {self.n_bootstrap!r}. "
                             "Example: EvaluationConfig(n_bootstrap=1000).")
        if not 0.5 < self.ci_level < 1.0:
            raise ValueError(f"EvaluationConfig.ci_level must be in (0.5, 1); got {self.ci_level!r}. "
                             "Example: EvaluationConfig(ci_level=0.95).")
