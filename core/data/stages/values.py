"""The typed values a validation passes from stage to stage.

``read`` gives a :class:`~core.data.read_limits.RawTable`; ``normalise`` turns it into :class:`LongRows`;
``clean`` into :class:`CleanRows` (with :class:`HourRows` for the online task); ``labels`` gives :class:`Labels`;
``assemble`` builds the :class:`~core.data.cohort.Cohort` from them and ``summarise`` the report's summary. The
row accounting travels with them: :attr:`LongRows.rows_read` observations are read, and each is either used
(an event of the cohort, :attr:`CleanRows.static_rows`, :attr:`CleanRows.hour_rows`) or excluded under a reason
(``ValidationReport.rows_excluded``).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core.data.stages.columns import ColumnMapping

__all__ = ["LongRows", "HourRows", "CleanRows", "Labels"]


@dataclass(frozen=True)
class LongRows:
    """What :func:`~core.data.stages.normalise.normalise_table` gives the cleaning stage.

    Attributes
    ----------
    frame : DataFrame
        One row per observation: ``patient_id``, ``time_raw``, ``variable``, ``value_raw`` as the file holds them,
        ``_line`` (the file line, for one CSV) and, online, ``_hour`` (an hour entry of a wide table, no value)
        and ``_label`` (the raw hour label, when the events carry it).
    mapping : ColumnMapping
        The columns' roles and the layout.
    rows_read : int
        Observations read: the file's rows (long layout), or its filled cells plus, online, one hour entry per
        file row (wide layout). Every one of them is later used or excluded under a reason.
    static : DataFrame or None
        Wide layout: the static attributes from the columns constant within every patient (index: patient id).
    static_cells : int
        The filled cells of those columns kept as static attributes (used observations, not in ``frame``).
    labels : Series or None
        Stay task: the labels of an events column constant per patient (``mapping.target``).
    groups : Series or None
        The grouping column's value per patient (``mapping.group``), when it is valid.
    label_variable : str or None
        Online task, long layout, labels in the events: the variable whose rows are hour labels
        (``DataConfig.target``), never measurements.
    """

    frame: pd.DataFrame
    mapping: ColumnMapping
    rows_read: int
    static: pd.DataFrame | None = None
    static_cells: int = 0
    labels: pd.Series | None = None
    groups: pd.Series | None = None
    label_variable: str | None = None


@dataclass(frozen=True)
class HourRows:
    """Online task: what the cleaning stage sets aside before parsing values."""

    #: ``patient_id``, ``time_hours`` of every row kept after the patient and time checks.
    row_times: pd.DataFrame
    #: ``patient_id``, ``time_hours``, ``_label`` (raw) [, ``_line``] of the label-carrying rows;
    #: ``None`` when the events hold no label.
    labelled: pd.DataFrame | None
    label_name: str | None


@dataclass(frozen=True)
class CleanRows:
    """What :func:`~core.data.stages.clean.clean_rows` gives the label and assembly stages.

    Attributes
    ----------
    events : DataFrame
        The kept measurements: ``patient_id`` and ``variable`` (categoricals of str), ``time_hours``, ``value``.
    static : DataFrame
        Static attributes, one row per patient (index ``patient_id``); 'unknown' codes set to missing.
    hours : HourRows or None
        Online task: the row times and the raw hour labels; ``None`` for the stay task.
    static_rows : int
        Observations used as static attributes (rows at a patient's first record, a wide table's static cells).
    hour_rows : int
        Online task: the hour entries of a wide table and the label rows of a long one, taken out of the
        measurements (used: they carry an hour and its label, not a measurement).
    """

    events: pd.DataFrame
    static: pd.DataFrame
    hours: HourRows | None
    static_rows: int
    hour_rows: int


@dataclass(frozen=True)
class Labels:
    """What :func:`~core.data.stages.labels.attach_labels` gives the assembly stage; ``None`` where absent (or
    after a blocking error).

    Attributes
    ----------
    labels : Series or None
        Stay task: each patient's 0/1 outcome (index: patient id). Online, the cohort derives them from
        ``hour_labels``.
    target : str or None
        The outcome's name as the data spell it.
    other_outcomes : DataFrame or None
        The labels file's other columns: outcomes kept aside, never features.
    hour_labels : DataFrame or None
        Online task: ``patient_id``, ``time_hours``, ``label`` (0/1).
    onsets : Series or None
        Online task: each patient's onset in the events' hours.
    hours_after_onset : int or None
        Online task with onset times: the hours at or after onset left out (not scored).
    """

    labels: pd.Series | None = None
    target: str | None = None
    other_outcomes: pd.DataFrame | None = None
    hour_labels: pd.DataFrame | None = None
    onsets: pd.Series | None = None
    hours_after_onset: int | None = None
