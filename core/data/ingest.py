"""From user files to a validated :class:`~core.data.cohort.Cohort`.

``validate_data`` reads the events (and optional labels), detects the layout and columns,
parses times and values, separates static attributes from time series, attaches labels and
records every problem in a :class:`~core.data.validation.ValidationReport`; for the online task it
also builds the per-hour labels (see :func:`validate_data`). Unusable rows are
excluded *and counted*; nothing is dropped silently. ``load_cohort`` is the strict variant
that raises :class:`~core.exceptions.ValidationFailed` when training would be impossible.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from core.data.cohort import Cohort, make_cohort
from core.config import DataConfig
from core.data.duplicates import check_duplicate_stays, find_duplicate_stays
from core.exceptions import CohortError, DataReadError, ValidationFailed
from core.data.readers import (MemoryCheck, RawTable, Source, TableProbe, env_limit, out_of_memory_message, read_table,
                          validate_limit_mb)
from core.data.validation import ValidationReport, clip_text, show_value

__all__ = ["ColumnMapping", "detect_columns", "inspect_columns", "validate_data", "load_cohort", "parse_time_hours",
           "estimate_memory", "memory_check", "reading_settings", "MAX_VARIABLES", "MIN_YEAR"]

#: the most distinct variables a long table may hold; the environment variable ``CHRONOSCOPE_MAX_VARIABLES``
#: overrides it. Far more usually means the variable column is an id, a note or a value.
MAX_VARIABLES = 5000

# Column-name candidates, compared after lower-casing and dropping " _-.".
_PATIENT_NAMES = ["patientid", "patient", "subjectid", "subject", "recordid", "record", "stayid", "icustayid",
                  "hadmid", "encounterid", "encounter", "admissionid", "pid", "id", "mrn"]
_TIME_NAMES = ["timehours", "time", "hours", "hour", "hoursfromadmission", "charttime", "timestamp", "datetime",
               "date", "t", "offset", "elapsed", "reltime", "chartdatetime", "iculos"]
_VARIABLE_NAMES = ["variable", "parameter", "param", "variablename", "item", "itemname", "label", "measurement",
                   "feature", "name", "var", "code", "vital", "test"]
_VALUE_NAMES = ["value", "valuenum", "val", "result", "reading", "measurementvalue", "numericvalue", "amount"]
_TARGET_NAMES = ["inhospitaldeath", "mortality", "death", "died", "hospitalexpireflag", "outcome", "label",
                 "target", "y", "sepsislabel", "sepsis"]
#: descriptors that are attributes of the stay, not time series (PhysioNet 2012 and common exports).
_STATIC_NAMES = {"age", "gender", "sex", "height", "icutype", "weight", "ethnicity", "race", "admissiontype",
                 "admissionweight", "bmi", "unittype"}
#: names that describe what happened after the prediction time: outcomes, never features.
_LEAKY = re.compile(r"(length_?of_?stay|\blos\b|^los_|surviv|death|mortal|died|expire|discharge|outcome|"
                    r"readmi|saps|sofa|apache)", re.IGNORECASE)
_HHMM = re.compile(r"^\s*\d{1,4}:\d{2}(:\d{2})?\s*$")


def _norm(name: object) -> str:
    return re.sub(r"[\s_\-.]", "", str(name)).lower()


@dataclass(frozen=True)
class ColumnMapping:
    """Which input columns play which role (``None`` where absent)."""

    layout: str            # "long" | "wide"
    patient: str
    time: str
    variable: str | None = None
    value: str | None = None
    target: str | None = None
    #: ``DataConfig.group_col``: groups patients for the split, never a feature.
    group: str | None = None


def _find(columns: list, candidates: list[str], exclude: set) -> str | None:
    normed = {_norm(c): c for c in columns if c not in exclude}
    for cand in candidates:
        if cand in normed:
            return normed[cand]
    return None


def _columns_fix(columns: list, flag: str, role: str) -> str:
    shown = ", ".join(show_value(str(c), 60) for c in columns[:12])
    return (f"Columns found: {shown}. Name the {role} column with {flag} (CLI) or in the column mapping "
            "(app).")


def detect_columns(frame: pd.DataFrame, config: DataConfig) -> ColumnMapping:
    """Find the patient, time, variable and value columns (overrides in ``config`` win).

    Raises
    ------
    CohortError
        When a required column is missing or an override names a column that does not exist.
    """
    cols = list(frame.columns)
    for flag, given in (("--patient-col", config.patient_col), ("--time-col", config.time_col),
                        ("--variable-col", config.variable_col), ("--value-col", config.value_col),
                        ("--group-col", config.group_col)):
        if given is not None and given not in cols:
            raise CohortError(f"Column {show_value(given)} given with {flag} is not in the events file. "
                              + _columns_fix(cols, flag, flag[2:-4]))
    group = config.group_col
    roles = {"--patient-col": config.patient_col, "--time-col": config.time_col,
             "--variable-col": config.variable_col, "--value-col": config.value_col, "--target": config.target}
    clash = [flag for flag, given in roles.items() if group is not None and given == group]
    if clash:
        raise CohortError(f"Column {show_value(group)} is given both with --group-col and with {clash[0]}; the "
                          "grouping column only groups patients (e.g. subject_id over several stays). Name another "
                          "column with --group-col, or leave it out.")
    # The grouping column is never detected as another role (subject_id would otherwise pass for the patient).
    used: set = {group} if group is not None else set()
    patient = config.patient_col or _find(cols, _PATIENT_NAMES, used)
    if patient is None:
        raise CohortError("No patient id column was recognised in the events file. "
                          + _columns_fix(cols, "--patient-col", "patient id"))
    used.add(patient)
    time = config.time_col or _find(cols, _TIME_NAMES, used)
    if time is None:
        raise CohortError("No time column was recognised in the events file (expected e.g. 'time', 'hours', "
                          "'charttime'). " + _columns_fix(cols, "--time-col", "time"))
    used.add(time)
    target = config.target if config.target in cols else None
    if target:
        used.add(target)
    variable = config.variable_col or _find(cols, _VARIABLE_NAMES, used)
    value = config.value_col or _find(cols, _VALUE_NAMES, used | ({variable} if variable else set()))
    layout = config.layout
    if layout == "auto":
        layout = "long" if variable is not None and value is not None else "wide"
    if layout == "long" and (variable is None or value is None):
        missing = "variable" if variable is None else "value"
        raise CohortError(f"Long layout needs a {missing} column, but none was recognised. "
                          + _columns_fix(cols, f"--{missing}-col", missing)
                          + " Or use --layout wide for one column per variable.")
    if layout == "wide":
        variable = value = None
        if len([c for c in cols if c not in used]) == 0:
            raise CohortError("The events file has no measurement columns besides patient and time. "
                              + _columns_fix(cols, "--variable-col", "variable"))
    return ColumnMapping(layout, patient, time, variable, value, target, group)


# -- parsing -------------------------------------------------------------------

#: date-times before this year are not records (a 0001-01-01 placeholder, a mangled year): they never
#: anchor a patient's clock and are excluded as absurd times.
MIN_YEAR = 1900
_MIN_YEAR_HOURS = (np.datetime64(f"{MIN_YEAR}-01-01T00:00:00", "s").astype("int64")) / 3600.0
_HHMM_PARTS = r"^\s*(\d{1,4}):(\d{2})(?::(\d{2}))?\s*$"


def parse_time_hours(raw: pd.Series, patients: pd.Series, fmt: str = "auto", *,
                     max_time_hours: float | None = None) -> tuple[np.ndarray, str]:
    """Convert a time column to float hours; unparseable entries become NaN.

    Numbers are hours; ``HH:MM`` (or ``HH:MM:SS``) is elapsed time; date-times become hours since
    each patient's first record. Returns ``(hours, detected_format)``. Text is parsed once per
    distinct value (a 48 h stay has at most 2,881 distinct ``HH:MM`` stamps), which keeps a
    1.7 M-row file well under a second.

    A date-time before :data:`MIN_YEAR`, or (with ``max_time_hours``) more than that many hours
    before the median of its patient's date-times, is an outlier: NaN, and it never anchors the
    patient's clock (one ``0001-01-01`` would otherwise push every real row out of range).
    """
    hours, fmt, _ = _parse_times(raw, patients, fmt, max_time_hours)
    return hours, fmt


def _parse_times(raw: pd.Series, patients: pd.Series, fmt: str,
                 max_time_hours: float | None) -> tuple[np.ndarray, str, np.ndarray]:
    """:func:`parse_time_hours`, plus where the date-times are outliers (``False`` for other formats)."""
    n = len(raw)
    no_outliers = np.zeros(n, dtype=bool)
    if fmt in ("auto", "hours") and pd.api.types.is_timedelta64_dtype(raw):
        return (raw.dt.total_seconds() / 3600.0).to_numpy(dtype="float64", na_value=np.nan), "hours", no_outliers
    if fmt == "auto":
        if pd.api.types.is_numeric_dtype(raw):
            fmt = "hours"
        elif pd.api.types.is_datetime64_any_dtype(raw):
            fmt = "datetime"
        else:
            sample = raw.dropna().astype(str).head(200)
            if len(sample) and sample.str.match(_HHMM).mean() > 0.8:
                fmt = "hhmm"
            elif len(sample) and pd.to_numeric(sample, errors="coerce").notna().mean() > 0.8:
                fmt = "hours"
            else:
                fmt = "datetime"
    if fmt == "hours" and pd.api.types.is_numeric_dtype(raw):
        return raw.to_numpy(dtype="float64", na_value=np.nan).copy(), fmt, no_outliers
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    if len(uniques) == 0:  # every time empty
        return np.full(n, np.nan), fmt, no_outliers
    if fmt == "hours":
        parsed = pd.to_numeric(pd.Series(uniques).astype(str).str.strip(), errors="coerce").to_numpy(dtype="float64")
    elif fmt == "hhmm":
        parts = pd.Series(uniques).astype(str).str.extract(_HHMM_PARTS)
        h, m = pd.to_numeric(parts[0], errors="coerce"), pd.to_numeric(parts[1], errors="coerce")
        sec = pd.to_numeric(parts[2], errors="coerce").fillna(0)
        parsed = np.array((h + m / 60.0 + sec / 3600.0).to_numpy(dtype="float64", na_value=np.nan))
        parsed[((m >= 60) | (sec >= 60)).to_numpy(dtype=bool)] = np.nan
    else:
        # as text: numbers given with --time-format datetime are not dates (pandas would soon read epochs)
        stamps_u = _parse_datetimes(pd.Series(uniques).astype(str)) \
            if not pd.api.types.is_datetime64_any_dtype(raw) else pd.Series(uniques)
        if stamps_u.dt.tz is None:
            stamps_u = stamps_u.dt.tz_localize("UTC")
        # Seconds since the epoch via numpy at second resolution: pandas may infer a coarse unit for odd
        # years (e.g. 0130), which a nanosecond subtraction would overflow.
        naive = stamps_u.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[s]")
        secs = naive.astype("int64").astype("float64")
        secs[np.isnat(naive)] = np.nan
        abs_h = np.where(codes >= 0, secs[np.maximum(codes, 0)], np.nan) / 3600.0
        return _anchored(abs_h, patients.to_numpy(), max_time_hours)
    out = np.where(codes >= 0, parsed[np.maximum(codes, 0)], np.nan)
    return out.astype("float64"), fmt, no_outliers


def _anchored(abs_h: np.ndarray, patients: np.ndarray,
              max_time_hours: float | None) -> tuple[np.ndarray, str, np.ndarray]:
    """Hours since each patient's first *plausible* date-time, and where the outliers are.

    An outlier is before :data:`MIN_YEAR` or, with ``max_time_hours``, more than that far before
    the median of the patient's date-times: kept as the anchor, it would make every real row an
    absurd time; set aside, it is excluded and counted instead.
    """
    outlier = abs_h < _MIN_YEAR_HOURS
    if max_time_hours is not None and len(abs_h):
        kept = np.where(outlier, np.nan, abs_h)
        median = pd.Series(kept).groupby(patients, sort=False).transform("median").to_numpy()
        outlier |= kept < median - max_time_hours
    abs_h = np.where(outlier, np.nan, abs_h)
    first = pd.Series(abs_h).groupby(patients, sort=False).transform("min").to_numpy()
    return abs_h - first, "datetime", outlier


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds, so messages read ``1.5``, not ``np.float64(1.5)``."""
    return value.item() if isinstance(value, np.generic) else value


def _parse_datetimes(text: pd.Series) -> pd.Series:
    """ISO date-times to UTC timestamps; anything unparseable, or out of pandas' range (years before
    1677 or after 2262, e.g. a mangled '0130-01-01'), becomes NaT instead of raising."""
    try:
        return pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    except (pd.errors.OutOfBoundsDatetime, OverflowError, ValueError):
        out = []
        for item in text:  # distinct values only: few
            try:
                out.append(pd.to_datetime(item, errors="coerce", format="ISO8601", utc=True))
            except (pd.errors.OutOfBoundsDatetime, OverflowError, ValueError):
                out.append(pd.NaT)
        return pd.to_datetime(pd.Series(out, index=text.index, dtype=object), utc=True)


def _examples(frame: pd.DataFrame, mask: np.ndarray, table: RawTable, cols: list[str], n: int = 3) -> list[str]:
    idx = np.flatnonzero(mask)[:n]
    out = []
    for i in idx:
        where = f"row {int(frame['_line'].iat[i])}" if "_line" in frame else \
            f"patient {clip_text(frame['patient_id'].iat[i])}"
        vals = ", ".join(f"{c}={show_value(_plain(frame[c].iat[i]))}" for c in cols if c in frame)
        out.append(f"{where}: {vals}")
    return out


def inspect_columns(events: Source, labels: Source | None = None, *,
                    config: DataConfig | None = None) -> dict[str, object]:
    """Read the files and report their columns and what auto-detection picks (for a mapping form).

    Returns a dict with ``events_columns``, ``mapping`` (:class:`ColumnMapping` or ``None``),
    ``error`` (why detection failed, else ``None``), ``labels_columns``, ``target_guess`` and
    ``target_choices``: the columns that can be a target, each ``(column, kind)`` with kind ``"0/1"``
    (a binary outcome, in the labels file or constant per patient in the events), ``"hourly"`` (a 0/1
    column of the events that changes within a patient: a label per hour, for the online task) or
    ``"onset"`` (a labels column named like an onset time, for the online task).
    """
    config = config or DataConfig()
    try:
        return _inspect_columns(events, labels, config)
    except MemoryError:
        return {"events_columns": [], "mapping": None, "labels_columns": [], "target_guess": None,
                "target_choices": [], "error": out_of_memory_message(_name_of(events), None)}


def _name_of(source: Source) -> str:
    return str(source[0]) if isinstance(source, tuple) else str(source)


def _inspect_columns(events: Source, labels: Source | None, config: DataConfig) -> dict[str, object]:
    out: dict[str, object] = {"events_columns": [], "mapping": None, "error": None, "labels_columns": [],
                              "target_guess": None, "target_choices": []}
    check = memory_check(config)
    try:
        table = read_table(events, check=check)
        frame = table.frame
        if table.fmt == "physionet":
            frame = frame.rename(columns={"Time": "time", "Parameter": "variable", "Value": "value"})
        out["events_columns"] = [str(c) for c in frame.columns]
        out["mapping"] = detect_columns(frame, config)
        lab_frame = read_table(labels, check=check).frame if labels is not None else table.outcomes
    except (DataReadError, CohortError) as err:
        out["error"] = str(err)
        return out
    choices = []
    if lab_frame is not None:
        cols = [str(c) for c in lab_frame.columns]
        out["labels_columns"] = cols
        pcol = _find(cols, _PATIENT_NAMES, set())
        guess = [c for c in cols if c != pcol and _norm(c) in _TARGET_NAMES]
        out["target_guess"] = guess[0] if guess else None
        for c, col in zip(cols, lab_frame.columns):
            if c == pcol:
                continue
            if _is_binary(lab_frame[col]):
                choices.append((c, "0/1"))
            elif "onset" in _norm(c):
                choices.append((c, "onset"))
    mapping = out["mapping"]
    skip = {getattr(mapping, k, None) for k in ("patient", "time", "variable", "value")}
    pcol = getattr(mapping, "patient", None)
    for c, col in zip(out["events_columns"], frame.columns):
        if c not in skip and c not in {x for x, _ in choices} and _is_binary(frame[col]):
            hourly = pcol in frame.columns and bool(
                (frame.groupby(frame[pcol].astype(str), sort=False)[col].nunique(dropna=True) > 1).any())
            choices.append((c, "hourly" if hourly else "0/1"))
    out["target_choices"] = choices
    if out["target_guess"] is None:
        guess = [c for c, kind in choices if _norm(c) in _TARGET_NAMES]
        out["target_guess"] = guess[0] if guess else None
    return out


def _is_binary(col: pd.Series) -> bool:
    """Non-empty values are all 0 or 1 (numbers, or text that reads as them)."""
    v = pd.Series(pd.unique(col.dropna()))
    if v.empty or len(v) > 4:
        return False
    num = pd.to_numeric(v, errors="coerce")
    return bool(num.notna().all() and num.isin([0, 1]).all())


# -- main entry points -------------------------------------------------------------

def validate_data(events: Source, labels: Source | None = None, *, config: DataConfig | None = None,
                  progress=None) -> tuple[Cohort | None, ValidationReport]:
    """Read, check and assemble a cohort; never raises for bad *data*.

    Memory is bounded: before a table is read whole, :func:`memory_check` refuses one whose validation
    would take more than :func:`core.data.readers.validate_limit_mb` (a blocking ``unreadable_events`` error with
    the numbers and the limit), and a ``MemoryError`` all the same becomes the blocking error
    ``out_of_memory``, never a traceback.

    Returns
    -------
    cohort : Cohort or None
        ``None`` when nothing usable could be built (unreadable file, missing columns...).
        A cohort is returned even when it cannot be *trained* on (e.g. labels missing), so
        it can still be explored; ``report.ok`` says whether training is possible.
    report : ValidationReport
        Errors, warnings, excluded-row counts and a summary.

    Notes
    -----
    With ``config.task == "online"`` the cohort gets ``row_times`` (every distinct patient and
    time of a kept input row, measured or not) and, when a target is given, ``hour_labels`` and
    ``onsets`` from one of two sources:

    * without a labels file, a 0/1 label of the events that varies by hour (``config.target``:
      a column in the wide layout, a value of the variable column in the long one); one label
      per patient and time (the maximum of its rows), never a feature;
    * with a labels file, an onset-time column (hours since the patient's first record, empty
      = never) and ``config.horizon_hours`` ``H``: hours before ``onset - H`` are 0, hours in
      ``[onset - H, onset)`` are 1, hours from the onset on are left out and counted.

    ``labels`` is then each patient's maximum hour label.

    Examples
    --------
    >>> cohort, report = validate_data("hourly.csv.gz",
    ...                                config=DataConfig(task="online", target="SepsisLabel"))  # doctest: +SKIP
    >>> report.summary["labelled hours"]  # doctest: +SKIP
    246838

    ``progress(message, fraction)``, if given, hears of each stage (reading, checking rows, labels, duplicates).
    """
    config = config or DataConfig()
    try:
        return _validate(events, labels, config, progress or (lambda message, fraction: None))
    except MemoryError:
        report = ValidationReport()
        report.error("out_of_memory", out_of_memory_message(_name_of(events), _size_of(events)),
                     fix="Split the table into smaller files, or validate it on a machine with more free memory.")
        return None, report


def _size_of(source: Source) -> int | None:
    try:
        if isinstance(source, tuple):
            return source[1].stat().st_size if hasattr(source[1], "stat") else len(source[1])
        return os.path.getsize(source) if os.path.isfile(source) else None
    except OSError:
        return None


def _validate(events: Source, labels: Source | None, config: DataConfig,
              progress) -> tuple[Cohort | None, ValidationReport]:
    report = ValidationReport()
    online = config.task == "online"
    check = memory_check(config)
    progress(f"reading {_name_of(events)}", 0.02)
    try:
        table = read_table(events, check=check)
    except DataReadError as err:
        report.error("unreadable_events", str(err), fix="See the message: re-export or convert the file.")
        return None, report
    for note in table.notes:
        report.info("read", f"{table.name}: {note}")
    if online:
        _check_label_not_static(config, report)
    # Online task: without a labels file, the hour labels come from the events (column or variable).
    labels_in_events = online and labels is None
    try:
        frame, static_from_cols, labels_from_cols, mapping, groups = _to_long(table, config, report,
                                                                              labels_in_events=labels_in_events)
    except CohortError as err:
        report.error("columns", str(err), fix="Map the columns explicitly (see the message).")
        return None, report
    hour_var = config.target if labels_in_events and mapping.layout == "long" and mapping.target is None else None
    table.frame = table.frame.iloc[:0]  # the rows live on in ``frame`` only: one copy in memory, not two
    try:
        progress(f"checking {report.rows_read:,} rows", 0.3)
        events_df, static_df, hours = _clean_long(frame, table, config, report, online=online, hour_var=hour_var)
    except CohortError as err:  # only raised for too many variables, before any row is judged
        report.error("too_many_variables", str(err), fix="See the message: map the variable column or filter it.")
        return None, report
    if static_from_cols is not None:
        static_df = static_df.combine_first(static_from_cols) if len(static_df) else static_from_cols
    static_df = _apply_static_sentinels(static_df, config, report)

    progress("attaching the labels", 0.7)
    label_series, other_outcomes = None, None
    hour_labels, onsets = None, None
    target = config.target
    if online:
        if labels is not None and mapping.target is not None:
            report.info("target_column_ignored", f"The events column {mapping.target!r} has the name given with "
                        "--target, but the labels file gives the labels: the column is set aside (never a feature).",
                        fix="Nothing to do; rename the column if it is a measurement.")
        if hours.labelled is not None:
            target = hours.label_name
            hour_labels, onsets = _hour_labels_from_rows(hours.labelled, target, table, config, report)
        elif labels is not None or table.outcomes is not None:
            hour_labels, onsets, other_outcomes, target = _hour_labels_from_onsets(
                labels, table, hours.row_times, config, report)
        elif config.target is not None:
            report.error("no_target", f"The target {config.target!r} is neither a column nor a variable of the "
                         "events file, nor given in a labels file.",
                         fix="Give the right --target name (e.g. --target SepsisLabel for a 0/1 column per hour), "
                             "or a labels file with an onset-time column (--labels, --target onset_hours).")
    elif labels is not None or table.outcomes is not None:
        label_series, other_outcomes, target = _read_labels(labels, table, config, report)
    elif labels_from_cols is not None:
        label_series = labels_from_cols
    elif config.target is not None and mapping.target is None:
        report.error("no_target", f"The target {config.target!r} is neither a column of the events file nor "
                     "given in a labels file.", fix="Give the labels file (--labels) or the right --target "
                     "column name.")

    if len(events_df) == 0 and len(static_df) == 0:
        report.error("no_rows", "No usable rows remain after validation (see the exclusions above).",
                     fix="Fix the problems listed, or check that the right columns were mapped.")
        return None, report
    cohort = make_cohort(events_df, static_df, label_series, target=target, source=table.name, report=report,
                         other_outcomes=other_outcomes, hour_labels=hour_labels, onsets=onsets,
                         row_times=hours.row_times if hours is not None else None)
    if groups is not None:
        groups = groups.loc[groups.index.intersection(pd.Index(cohort.patient_ids))]
        cohort = replace(cohort, groups=groups.sort_index())
        sizes = groups.value_counts()
        report.info("group_column", f"Patients grouped by {mapping.group!r}: {len(sizes):,} groups for "
                    f"{len(groups):,} patients (largest: {int(sizes.max()) if len(sizes) else 0:,} patients). The "
                    "split keeps each group on one side; the column is never a feature.")
    hour_summary = _hour_label_counts(cohort) if cohort.hour_labels is not None else {}
    if hour_summary:
        report.info("hour_labels", f"Hour labels ({cohort.target!r}): {hour_summary['labelled hours']:,} labelled "
                    f"hours, {hour_summary['positive hours']} positive, {hour_summary['patients with a positive hour']:,} "
                    "patients with a positive hour; the label is never a feature.",
                    count=hour_summary["labelled hours"], unit="hours")
    _check_labels_vs_patients(cohort, config, report)
    progress("looking for duplicate stays", 0.85)
    check_duplicate_stays(find_duplicate_stays(cohort.events, cohort.static), report,
                          trainable=cohort.labels is not None, labels=cohort.labels, groups=cohort.groups,
                          group_col=mapping.group)
    report.rows_used = (int(len(cohort.events)) + int(report.summary.pop("_static_rows", 0))
                        + int(report.summary.pop("_hour_rows", 0)))
    n_after_onset = report.summary.pop("_after_onset", None)
    if n_after_onset is not None:
        hour_summary["hours left out (at or after onset)"] = int(n_after_onset)
    report.summary = {
        "source": table.name,
        "format": f"{table.fmt}, {mapping.layout} layout",
        "columns": f"patient={show_value(mapping.patient)}, time={show_value(mapping.time)}"
                   + (f", variable={show_value(mapping.variable)}, value={show_value(mapping.value)}"
                      if mapping.layout == "long" else ""),
        **({"task": "online (a label per patient-hour)"} if online else {}),
        "patients": cohort.n_patients,
        "rows used": int(len(cohort.events)),
        **({"hours (distinct row times)": len(cohort.row_times)} if cohort.row_times is not None else {}),
        "time-series variables": len(cohort.series_variables),
        "static attributes": len(cohort.static_variables),
        **({f"groups ({mapping.group})": int(cohort.groups.nunique())} if cohort.groups is not None else {}),
        **({"target": cohort.target, "labelled patients": len(cohort.labelled_ids),
            "positives": int(cohort.labels.loc[cohort.labelled_ids].sum()),
            "prevalence": f"{cohort.prevalence:.2%}" if cohort.prevalence is not None else "n/a"}
           if cohort.labels is not None else {"target": "none (exploration only)"}),
        **hour_summary,
    }
    return cohort, report


def load_cohort(events: Source, labels: Source | None = None, *, config: DataConfig | None = None) -> Cohort:
    """Strict loader: like :func:`validate_data` but raises when any blocking error was found.

    Raises
    ------
    ValidationFailed
        Carrying the full report; ``str(err)`` is the printable report.

    Examples
    --------
    >>> cohort = load_cohort("events.csv", "outcomes.csv", config=DataConfig(target="died"))  # doctest: +SKIP
    """
    cohort, report = validate_data(events, labels, config=config)
    if cohort is None or not report.ok:
        raise ValidationFailed(report)
    return cohort


# -- memory ---------------------------------------------------------------------------

#: memory the validation takes beyond the raw table, per row of a long table (B), measured: 3 M rows validated
#: with ~115-130 B per row over the raw table's own (pandas and DuckDB paths), 20 M rows at 165 B per row in all.
LONG_ROW_BYTES = 150
#: the same per observation (filled value cell) of a wide table (B), measured at ~310-360 B (300,000 rows x 30 columns).
WIDE_CELL_BYTES = 370


def estimate_memory(probe: TableProbe, config: DataConfig) -> int:
    """About how much memory validating the table of ``probe`` takes (bytes, the interpreter aside).

    The raw table (its rows at the cost of the sample's rows in pandas, text at its real size; read by DuckDB,
    4 bytes per text cell and 8 per number), the text held while it is parsed, and what the validation adds:
    :data:`LONG_ROW_BYTES` per row of a long table, :data:`WIDE_CELL_BYTES` per filled value cell of a wide one
    (the layout and columns detected on the sample as the validation will; a table whose columns are not
    recognised is costed as wide).
    """
    sample = probe.sample.rename(columns=lambda c: str(c).strip())
    if probe.compact:
        raw_row = sum(8 if pd.api.types.is_numeric_dtype(sample[c]) or pd.api.types.is_bool_dtype(sample[c])
                      else 4 for c in sample.columns)
    elif len(sample):
        raw_row = sample.memory_usage(deep=True, index=False).sum() / len(sample)
    else:
        raw_row = 16 * sample.shape[1]
    try:
        mapping = detect_columns(sample, config)
    except CohortError:
        mapping = None
    if mapping is not None and mapping.layout == "long":
        per_row = raw_row + LONG_ROW_BYTES
    else:
        skip = {mapping.patient, mapping.time, mapping.target, mapping.group} if mapping is not None else set()
        values = [c for c in sample.columns if c not in skip]
        filled = (sum(int((~_blank_cells(sample[c])).sum()) for c in values) / len(sample)) if len(sample) \
            else len(values)
        filled += 1 if config.task == "online" else 0      # one hour entry per file row
        per_row = raw_row + max(filled, 1.0) * WIDE_CELL_BYTES
    return int(probe.text_bytes + probe.rows * per_row)


def memory_check(config: DataConfig, limit_mb: float | None = None) -> MemoryCheck:
    """The check :func:`core.data.readers.read_table` runs before it reads a table whole: refuse (``DataReadError``
    with the rows, the estimate, the limit and what to do) when :func:`estimate_memory` passes ``limit_mb``
    (default :func:`core.data.readers.validate_limit_mb`)."""
    limit = validate_limit_mb() if limit_mb is None else float(limit_mb)

    def check(probe: TableProbe) -> None:
        need = estimate_memory(probe, config)
        if need <= limit * 2 ** 20:
            return
        rows = {"counted": "", "at least": "at least ", "about": "about "}.get(probe.rows_are, "")
        text = f", {probe.text_bytes / 2 ** 20:,.0f} MB of text in memory" if probe.text_bytes else ""
        raise DataReadError(
            f"{probe.name}: this table is too large to validate here: {rows}{probe.rows:,} rows of "
            f"{probe.sample.shape[1]} columns{text}, which would take about {need / 2 ** 20:,.0f} MB of memory, more "
            f"than the limit of {limit:,.0f} MB for one validation. Split it into smaller files (e.g. by patient) "
            "and validate them one by one, or validate it with `python -m core validate` on a machine with more "
            f"memory, raising the limit there (e.g. CHRONOSCOPE_MAX_VALIDATE_MB={_round_up(need / 2 ** 20)}).")
    return check


def reading_settings() -> dict[str, str]:
    """How this process reads and checks tables, as environment values (``CHRONOSCOPE_*``): the limits (inflation,
    memory, columns, variables) in force and the engine settings. A validation in another process (a job's worker,
    forked from a server started earlier) runs with these to read exactly as this process would."""
    from core.data import duck, readers
    out = {k: os.environ[k] for k in (duck.ENGINE_ENV, duck.MIN_MB_ENV, duck.MEMORY_ENV, duck.TMP_ENV)
           if os.environ.get(k, "").strip()}
    out["CHRONOSCOPE_MAX_INFLATED_MB"] = f"{env_limit('CHRONOSCOPE_MAX_INFLATED_MB', readers.MAX_INFLATED_MB):g}"
    out["CHRONOSCOPE_MAX_VALIDATE_MB"] = f"{validate_limit_mb():g}"
    out["CHRONOSCOPE_MAX_COLUMNS"] = f"{env_limit('CHRONOSCOPE_MAX_COLUMNS', readers.MAX_COLUMNS):g}"
    out["CHRONOSCOPE_MAX_VARIABLES"] = f"{env_limit('CHRONOSCOPE_MAX_VARIABLES', MAX_VARIABLES):g}"
    return out


def _round_up(mb: float) -> int:
    step = 1024 if mb > 4096 else 256
    return int(-(-mb * 1.25 // step) * step)


# -- layout normalisation -----------------------------------------------------------

def _to_long(table: RawTable, config: DataConfig, report: ValidationReport, *, labels_in_events: bool = False):
    """Return (long frame with patient_id/time_raw/variable/value_raw[/_line], static, labels, mapping, groups).

    ``groups`` is the grouping column per patient (:func:`_groups_from_column`), ``None`` without one.

    Online task only: a wide table gets one *hour entry* per file row (column ``_hour`` True,
    no value), so that a row whose every cell is empty is still an hour; with
    ``labels_in_events`` an events column named by ``config.target`` becomes the raw hour
    label ``_label`` (on the hour entries in the wide layout, on every row in the long one).
    """
    online = config.task == "online"
    frame = table.frame
    frame.columns = [str(c).strip() for c in frame.columns]
    report.rows_read = int(len(frame))
    if frame.columns.duplicated().any():
        dup = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise CohortError(f"The events file has duplicate column names: {[clip_text(d) for d in dup[:5]]}. Rename "
                          "them so each is unique.")
    if table.fmt == "physionet":
        frame = frame.rename(columns={"Time": "time", "Parameter": "variable", "Value": "value"})
    mapping = detect_columns(frame, config)
    _report_padded_ids(table, frame, mapping.patient, report)
    pid = frame[mapping.patient]  # rows without an id are counted and excluded in _clean_long
    line = None if table.first_line is None else np.arange(len(frame)) + table.first_line
    labels_from_cols = None
    static_cols = None
    if mapping.target is not None and not online:
        labels_from_cols = _labels_from_column(frame, mapping, report)
    groups = _groups_from_column(frame, mapping, report) if mapping.group is not None else None
    if mapping.layout == "long":
        out = pd.DataFrame({"patient_id": pid, "time_raw": frame[mapping.time],
                            "variable": frame[mapping.variable], "value_raw": frame[mapping.value]})
        if line is not None:
            out["_line"] = line
        if labels_in_events and mapping.target is not None:
            out["_label"] = frame[mapping.target].to_numpy()
        extra = [c for c in frame.columns if c not in (mapping.patient, mapping.time, mapping.variable,
                                                       mapping.value, mapping.target, mapping.group)]
        if extra:
            report.info("extra_columns", f"Columns not used in the long layout: {[clip_text(c) for c in extra[:8]]}",
                        fix="Remove them, or use --layout wide if they are measurements.")
    else:
        # The grouping column is neither a measurement nor a static attribute, and holds no observations
        # (so its cells are not in rows_read).
        value_cols = [c for c in frame.columns if c not in (mapping.patient, mapping.time, mapping.target,
                                                            mapping.group)]
        leaky = [c for c in value_cols if _LEAKY.search(str(c))]
        n_leaky_cells = _count_filled(frame, leaky)
        if leaky:
            report.warning("leakage_columns", f"Columns that look like outcomes were set aside and will never be "
                           f"used as features: {[clip_text(c) for c in leaky[:10]]}", count=len(leaky), unit="columns",
                           fix="If one is your target, pass it with --target; otherwise remove it from the events.")
            report.exclude("leakage_columns", n_leaky_cells)
            value_cols = [c for c in value_cols if c not in leaky]
        static_cols = _constant_columns(frame, mapping.patient, value_cols, config)
        series_cols = [c for c in value_cols if c not in static_cols]
        if static_cols:
            report.info("static_columns", f"Columns constant within every patient, used as static attributes: "
                        f"{[clip_text(c) for c in static_cols[:10]]}", count=len(static_cols), unit="columns")
        base = pd.DataFrame({"patient_id": pid, "time_raw": frame[mapping.time]})
        if line is not None:
            base["_line"] = line
        parts = []
        for c in series_cols:
            part = base.copy()
            part["variable"] = c
            part["value_raw"] = frame[c]
            parts.append(part)
        out = pd.concat(parts, ignore_index=True) if parts else base.assign(variable=pd.Series(dtype=str),
                                                                                value_raw=np.nan).iloc[:0]
        # In a wide table an empty cell is "not measured", not a broken row. Checked per column:
        # only text columns can hold blank strings (a 2.3 M-cell file saves seconds).
        empty = np.concatenate([_blank_cells(frame[c]) for c in series_cols]) if series_cols else \
            np.zeros(0, dtype=bool)
        n_cells = int(empty.sum())
        out = out[~empty].reset_index(drop=True)
        if n_cells:
            report.info("wide_empty_cells", f"{n_cells:,} empty cells in the wide table mean 'not measured' "
                        "(normal for sparse data).")
        if online:
            # One hour entry per file row, measured or not: the hours an online model scores.
            hour = base.assign(variable="(hour)", value_raw=np.nan, _hour=True)
            if labels_in_events and mapping.target is not None:
                hour["_label"] = frame[mapping.target].to_numpy()
            out = pd.concat([out.assign(_hour=False), hour], ignore_index=True)
        # A wide row holds several observations: count filled cells, so that read = used + excluded
        # adds up whatever happens to each cell (static, series, excluded).
        n_static_read = _count_filled(frame, static_cols)
        if static_cols:
            frame = _check_plausible_static_columns(frame, mapping.patient, static_cols, table, config, report)
        n_static_cells = _count_filled(frame, static_cols)
        report.rows_read = int(len(out)) + n_static_read + n_leaky_cells
        report.summary["_static_rows"] = n_static_cells
        report.info("wide_counts", f"Wide layout: the {len(frame):,} file rows hold {report.rows_read:,} "
                    "observations (filled cells" + (", plus one hour entry per file row" if online else "")
                    + "); row counts below are observations.")
        static_cols = _static_from_wide(frame, mapping.patient, static_cols) if static_cols else None
        report.summary["_wide"] = True
    return out, static_cols, labels_from_cols, mapping, groups


def _padded_groups(texts: list[str]) -> list[tuple[str, list[str]]]:
    """The ids that differ only by surrounding whitespace: ``(id, [its spellings])`` for every id written in
    more than one way (``"1"``, ``" 1"``, ``"1 "``, ``"\\t1"``), sorted; blank ids and missing-value words aside."""
    from core.data.duck import NULL_STRINGS
    raw = pd.Series(texts, dtype=object)
    key = raw.str.strip()
    padded = set(key[key != raw])
    if not padded:
        return []
    spellings = raw[key.isin(padded)].groupby(key[key.isin(padded)]).agg(lambda g: sorted(set(g)))
    missing = set(NULL_STRINGS) | {""}
    return [(k, v) for k, v in sorted(spellings.items()) if len(v) > 1 and k not in missing]


def _report_padded_ids(table: RawTable, frame: pd.DataFrame, column: str, report: ValidationReport) -> None:
    """Warn, before they are merged, about patient ids that differ only by spaces or tabs around them.

    The texts are the file's own: ``table.raw_texts`` for a column read as numbers (where `` 1`` and ``1``
    both became 1) or with leading spaces skipped, else the distinct cells of the column.
    """
    texts = table.raw_texts(list(frame.columns).index(column)) if table.raw_texts is not None else None
    table.raw_texts = None       # done with it: it may hold the file's content
    col = frame[column]
    if texts is None:
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            return               # numbers as the file wrote them: no whitespace
        texts = col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else pd.unique(col.dropna())
    groups = _padded_groups([t for t in texts if isinstance(t, str)])
    if not groups:
        return
    n_spellings = sum(len(g) for _, g in groups)
    report.warning("ids_differ_by_whitespace",
                   f"{n_spellings - len(groups):,} patient id(s) in column {show_value(column)} differ from another "
                   "id only by spaces or tabs around them; they are read as the same patient (the spaces removed): "
                   f"{n_spellings:,} spellings became {len(groups):,} patient(s)",
                   count=n_spellings - len(groups), unit="ids",
                   examples=[f"patient {show_value(key, 40)} written as " + ", ".join(show_value(v, 40) for v in g[:4])
                             + (f" and {len(g) - 4} more" if len(g) > 4 else "") for key, g in groups[:5]],
                   fix="If these are different patients, give them ids that differ in more than spaces; if they are "
                       "the same patient, remove the spaces in the export to silence this warning.")


def _blank_cells(col: pd.Series) -> np.ndarray:
    """Where a column is empty: NaN, or (text columns only) blank after stripping."""
    blank = col.isna().to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return blank  # a number is never blank text
    return blank | (col.astype(str).str.strip() == "").to_numpy(dtype=bool)


def _count_filled(frame: pd.DataFrame, cols: list) -> int:
    """Non-empty cells in ``cols`` (NaN and blank text are empty)."""
    if not cols:
        return 0
    return int(sum(int((~_blank_cells(frame[c])).sum()) for c in cols))


def _constant_columns(frame: pd.DataFrame, patient: str, cols: list, config: DataConfig) -> list:
    if config.static_variables is not None:
        return [c for c in cols if c in config.static_variables]
    g = frame.groupby(frame[patient].astype(str), sort=False)
    nun = g[cols].nunique(dropna=True)
    n_rows = g.size()
    multi_row = n_rows > 1
    if not multi_row.any():
        return [c for c in cols if _norm(c) in _STATIC_NAMES]
    # The cheap whole-table tests first, so a wide table costs one numeric parse per candidate only.
    constant = (nun.loc[multi_row] <= 1).all()
    filled = frame[cols].notna().mean()
    out = []
    for c in cols:
        if not (constant[c] and filled[c] > 0.5):
            continue
        if pd.to_numeric(frame[c], errors="coerce").notna().sum() >= 0.5 * frame[c].notna().sum():
            out.append(c)
    return out


def _static_from_wide(frame: pd.DataFrame, patient: str, cols: list) -> pd.DataFrame:
    sub = frame[[patient] + cols].copy()
    for c in cols:
        sub[c] = pd.to_numeric(sub[c], errors="coerce")
    static = sub.groupby(sub[patient].astype(str))[cols].first()
    static.index.name = "patient_id"
    return static


def _labels_from_column(frame: pd.DataFrame, mapping: ColumnMapping, report: ValidationReport) -> pd.Series | None:
    col = mapping.target
    vals = pd.to_numeric(frame[col], errors="coerce")
    pid = frame[mapping.patient].astype(str)
    per = pd.DataFrame({"p": pid, "v": vals}).dropna().groupby("p")["v"]
    nun = per.nunique()
    bad = nun[nun > 1]
    if len(bad):
        report.error("target_not_constant", f"The target column {col!r} changes within a patient, so it is not a "
                     "per-patient outcome.", count=len(bad), unit="patients",
                     examples=[f"patient {clip_text(p)}" for p in bad.index[:3]],
                     fix="Give one outcome per patient, e.g. in a separate labels file (--labels); or, if it is a "
                         "label per hour (e.g. SepsisLabel), choose the online task (--task online, or "
                         "DataConfig(task='online')).")
        return None
    report.info("target_in_events", f"Labels taken from the events column {col!r} (constant per patient); the "
                "column is not used as a feature.")
    return _binary_labels(per.first(), col, report)


def _groups_from_column(frame: pd.DataFrame, mapping: ColumnMapping, report: ValidationReport) -> pd.Series | None:
    """The grouping column's value per patient (index: cleaned patient id; values: str), or ``None``.

    Every row of a patient must hold the same group (blank cells are allowed beside it) and every
    patient one: a group that varies within a patient, or a patient without any, is a blocking
    error (the split could not keep the groups apart), and the cohort gets no groups. Works on
    the distinct ids only, so it costs little on millions of rows.
    """
    col = mapping.group
    pcodes, puniq = pd.factorize(frame[mapping.patient], use_na_sentinel=True)
    clean = _clean_category(pd.Series(puniq))           # the ids _clean_long will give (blank -> NaN)
    ccodes = clean.cat.codes.to_numpy()
    row_p = np.where(pcodes >= 0, ccodes[np.maximum(pcodes, 0)] if len(ccodes) else -1, -1)
    gvals = _clean_category(frame[col])
    row_g = gvals.cat.codes.to_numpy()
    has_p = row_p >= 0
    per = pd.DataFrame({"p": row_p[has_p], "g": row_g[has_p]})
    given = per[per["g"] >= 0]
    nun = given.groupby("p")["g"].nunique()
    pids = clean.cat.categories
    gcats = gvals.cat.categories
    varying = nun[nun > 1]
    missing = np.setdiff1d(np.unique(per["p"].to_numpy()), nun.index.to_numpy())
    fix = (f"Give every patient exactly one value in {col!r} (the same on all its rows), e.g. the subject id of "
           "the person the stay belongs to; or leave out --group-col.")
    if len(varying):
        ex = given[given["p"].isin(varying.index[:3])].drop_duplicates().groupby("p")["g"].apply(
            lambda g: ", ".join(show_value(str(gcats[c]), 40) for c in g.iloc[:3]))
        report.error("group_not_constant", f"The grouping column {col!r} changes within a patient, so it cannot keep "
                     "the patient on one side of the split.", count=len(varying), unit="patients",
                     examples=[f"patient {clip_text(pids[p])}: {v}" for p, v in ex.items()], fix=fix)
    if len(missing):
        report.error("group_missing", f"Patients without a value in the grouping column {col!r}.",
                     count=len(missing), unit="patients",
                     examples=[f"patient {clip_text(pids[p])}" for p in missing[:3]], fix=fix)
    if len(varying) or len(missing):
        return None
    first = given.groupby("p")["g"].first()
    groups = pd.Series(np.asarray(gcats, dtype=object)[first.to_numpy()],
                       index=pd.Index(np.asarray(pids, dtype=object)[first.index.to_numpy()], name="patient_id"),
                       name=str(col))
    return groups


# -- cleaning ---------------------------------------------------------------------

@dataclass(frozen=True)
class _HourRows:
    """Online task: what :func:`_clean_long` sets aside before parsing values."""

    #: ``patient_id``, ``time_hours`` of every row kept after the patient and time checks.
    row_times: pd.DataFrame
    #: ``patient_id``, ``time_hours``, ``_label`` (raw) [, ``_line``] of the label-carrying rows;
    #: ``None`` when the events hold no label.
    labelled: pd.DataFrame | None
    label_name: str | None


def _match_variable(variable: pd.Series, name: str) -> str | None:
    """The variable (category) called ``name``, exactly or after normalising case and ``" _-."``."""
    cats = [str(c) for c in variable.cat.categories]
    if name in cats:
        return name
    normed = [c for c in cats if _norm(c) == _norm(name)]
    return normed[0] if len(normed) == 1 else None


def _split_hours(frame: pd.DataFrame, label_name: str | None,
                 report: ValidationReport) -> tuple[pd.DataFrame, _HourRows]:
    """Record the row times and take the hour entries and raw labels out of the measurements.

    Hour entries (wide layout) and label rows (long layout) are counted as used: they carry an
    hour (and its label), not a measurement.
    """
    row_times = frame[["patient_id", "time_hours"]].drop_duplicates().reset_index(drop=True)
    has_flag = "_hour" in frame
    is_hour = frame["_hour"].to_numpy(dtype=bool) if has_flag else np.zeros(len(frame), dtype=bool)
    labelled = None
    if "_label" in frame:
        carriers = frame[is_hour] if has_flag else frame
        cols = ["patient_id", "time_hours", "_label"] + (["_line"] if "_line" in frame else [])
        labelled = carriers[cols].reset_index(drop=True)
    report.summary["_hour_rows"] = int(is_hour.sum())
    if has_flag:
        frame = frame[~is_hour].reset_index(drop=True)
    frame = frame.drop(columns=[c for c in ("_hour", "_label") if c in frame])
    return frame, _HourRows(row_times, labelled, label_name)


def _check_variable_count(variable: pd.Series) -> None:
    """Refuse more distinct variables than :data:`MAX_VARIABLES` before any per-variable work."""
    limit = int(env_limit("CHRONOSCOPE_MAX_VARIABLES", MAX_VARIABLES))
    cats = variable.cat.categories
    if len(cats) > limit:
        shown = ", ".join(show_value(str(c), 40) for c in cats[:5])
        raise CohortError(f"The events hold {len(cats):,} distinct variables, more than the limit of {limit:,} "
                          f"(e.g. {shown}). The variable column is probably not a variable name (an id, a note or "
                          "a value?): map the right column with --variable-col, keep only the variables you need, "
                          "or raise the limit with the environment variable CHRONOSCOPE_MAX_VARIABLES "
                          f"(e.g. CHRONOSCOPE_MAX_VARIABLES={limit * 2}).")


def _clean_long(frame: pd.DataFrame, table: RawTable, config: DataConfig, report: ValidationReport, *,
                online: bool = False, hour_var: str | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame, _HourRows | None]:
    """Parse, check and exclude row by row; return (events, static, hours).

    ``hours`` is ``None`` for the stay task. For the online task it holds the row times of the
    rows kept after the patient and time checks, and the raw hour labels found in the events
    (the ``_label`` column of :func:`_to_long`, or the rows whose variable is ``hour_var``).

    Raises :class:`CohortError` when the variables outnumber :data:`MAX_VARIABLES`.
    """
    n0 = len(frame)
    frame = frame.assign(patient_id=_clean_category(frame["patient_id"]),
                         variable=_clean_category(frame["variable"]))
    _check_variable_count(frame["variable"])
    label_var = _match_variable(frame["variable"], hour_var) if hour_var is not None else None
    if label_var is not None:
        # Long layout: the rows of the label variable are hour labels, never measurements.
        frame = frame.assign(_hour=(frame["variable"] == label_var).to_numpy(dtype=bool),
                             _label=frame["value_raw"])

    bad_pid = frame["patient_id"].isna().to_numpy()
    frame = _exclude(frame, bad_pid, "missing_patient_id", report, table,
                     "Rows without a patient id", "Fill in the patient id, or remove these rows.",
                     ["patient_id", "variable"])

    bad_var = frame["variable"].isna().to_numpy()
    frame = _exclude(frame, bad_var, "empty_variable", report, table, "Rows with an empty variable name",
                     "Give every measurement a variable name (e.g. HR), or remove these rows.",
                     ["patient_id", "time_raw", "value_raw"])

    leaky_vars = sorted({v for v in frame["variable"].unique() if _LEAKY.search(str(v)) and v != label_var})
    if leaky_vars:
        mask = frame["variable"].isin(leaky_vars).to_numpy()
        frame = _exclude(frame, mask, "leakage_variable", report, table,
                         f"Variables that look like outcomes ({', '.join(clip_text(v) for v in leaky_vars[:6])}) were excluded so they can "
                         "never become features", "If one of them is your target, give it with --target and a "
                         "labels file; otherwise remove it from the events.", ["patient_id", "variable"])

    hours, fmt, outlier = _parse_times(frame["time_raw"], frame["patient_id"], config.time_format,
                                       config.max_time_hours)
    report.info("time_format", f"Times read as {dict(hours='hours (numbers)', hhmm='HH:MM elapsed', datetime='date-times (hours since each patient first record)')[fmt]}.")
    frame = frame.assign(time_hours=hours)
    frame = _exclude(frame, outlier, "absurd_time", report, table,
                     f"Rows with an absurd date-time (before {MIN_YEAR}, or more than {config.max_time_hours:,.0f} h "
                     "before the patient's other records, so they do not set the patient's start)",
                     "Correct or remove these date-times (a placeholder such as 0001-01-01 is not a time); if the stay "
                     "really is that long, raise --max-time-hours.", ["patient_id", "time_raw"])
    hours = frame["time_hours"].to_numpy()
    bad_time = np.isnan(hours)
    if len(frame) > 0 and bad_time.mean() > 0.5:
        report.error("time_unparseable", f"Most times ({bad_time.mean():.0%}) could not be parsed as {fmt}.",
                     count=int(bad_time.sum()), examples=_examples(frame, bad_time, table, ["time_raw"]),
                     fix="Give times as hours (e.g. 1.5), HH:MM since admission (e.g. 01:30), or ISO date-times "
                         "(2024-01-31 13:45), and set --time-format if auto-detection guessed wrong.")
    frame = _exclude(frame, bad_time, "bad_time", report, table, "Rows whose time could not be parsed",
                     "Use hours (1.5), HH:MM (01:30) or ISO date-times (2024-01-31T13:45).", ["patient_id", "time_raw"])
    t = frame["time_hours"].to_numpy()
    frame = _exclude(frame, t < 0, "negative_time", report, table, "Rows with a negative time (before admission)",
                     "Times must be hours since admission (>= 0). Shift them, or remove pre-admission rows.",
                     ["patient_id", "time_raw"])
    t = frame["time_hours"].to_numpy()
    frame = _exclude(frame, t > config.max_time_hours, "absurd_time", report, table,
                     f"Rows with an absurd time (more than {config.max_time_hours:,.0f} h after admission)",
                     "Check the time unit (hours expected, not minutes or seconds), or raise --max-time-hours.",
                     ["patient_id", "time_raw"])
    hours = None
    if online:
        frame, hours = _split_hours(frame, label_var or config.target, report)

    raw = frame["value_raw"]
    if pd.api.types.is_numeric_dtype(raw):
        values = raw.to_numpy(dtype="float64", na_value=np.nan)
        text_bad = np.zeros(len(raw), dtype=bool)
    else:
        s = raw.astype("string").str.strip()
        values = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        # decimal comma inside an otherwise comma-free file, e.g. "37,2"
        comma = np.isnan(values) & s.str.fullmatch(r"-?\d+,\d+").fillna(False).to_numpy(dtype=bool)
        if comma.any():
            values[comma] = pd.to_numeric(s[comma].str.replace(",", ".", regex=False)).to_numpy()
            report.warning("decimal_comma", "Values with a decimal comma were read as decimals.",
                           count=int(comma.sum()), examples=_examples(frame, comma, table, ["value_raw"]),
                           fix="Export with a decimal point, or use ';' as the delimiter.")
        empty = s.isna().to_numpy(dtype=bool) | (s == "").fillna(True).to_numpy(dtype=bool) | \
            s.str.lower().isin(["nan", "na", "n/a", "null", "none"]).fillna(False).to_numpy(dtype=bool)
        text_bad = np.isnan(values) & ~empty
    frame = frame.assign(value=values)
    frame = _exclude(frame, text_bad, "non_numeric_value", report, table, "Rows whose value is not a number",
                     "Values must be numeric (e.g. 7.4). Recode text results (e.g. 'positive' -> 1) or remove them.",
                     ["patient_id", "variable", "value_raw"])
    v = frame["value"].to_numpy()
    frame = _exclude(frame, np.isnan(v), "missing_value", report, table, "Rows with an empty or NaN value",
                     "Remove rows that carry no measurement, or fill in the value.", ["patient_id", "variable"])
    v = frame["value"].to_numpy()
    frame = _exclude(frame, np.isinf(v), "infinite_value", report, table, "Rows with an infinite value (inf)",
                     "Replace +/-inf with the real measurement or remove the row.", ["patient_id", "variable", "value_raw"])

    frame = _check_plausible(frame, table, config, report)

    # Static attributes: known descriptors (or configured names) at the patient's first record.
    frame = frame.drop(columns=["time_raw", "value_raw"])
    static, frame = _split_static(frame, config, report)

    # Sentinels in time series: only for variables with no other negative values.
    if config.sentinel_values and len(frame):
        is_sent = frame["value"].isin(config.sentinel_values).to_numpy()
        if is_sent.any():
            neg_other = frame.loc[(frame["value"] < 0).to_numpy() & ~is_sent, "variable"].unique()
            mask = is_sent & ~frame["variable"].isin(neg_other).to_numpy()
            frame = _exclude(frame, mask, "sentinel_value", report, table,
                             f"Rows holding an 'unknown' code ({', '.join(f'{s:g}' for s in config.sentinel_values)}) "
                             "in a variable that is otherwise never negative",
                             "Nothing to do if these codes mean 'unknown'; otherwise set --sentinel to the codes "
                             "your export uses (or 'none').", ["patient_id", "variable", "value"], level="warning")

    dup = _duplicated(frame, ["patient_id", "time_hours", "variable", "value"])
    frame = _exclude(frame, dup, "duplicate_row", report, table, "Exact duplicate rows (same patient, time, "
                     "variable and value) were kept once", "Nothing to do; de-duplicate the export to silence this.",
                     ["patient_id", "time_hours", "variable"], level="warning")
    same_slot = _duplicated(frame, ["patient_id", "time_hours", "variable"], keep=False)
    if same_slot.any():
        report.info("same_time_values", "Several different values for one variable at the same time (all kept; "
                    "features average them)", count=int(same_slot.sum()),
                    examples=_examples(frame, same_slot, table, ["variable", "time_hours", "value"]))
    events = frame[["patient_id", "time_hours", "variable", "value"]]
    if len(events) == 0 and n0 > 0:
        report.error("no_usable_rows", "No usable measurement rows remain.",
                     fix="Check the column mapping and the errors above.")
    return events, static, hours


def _duplicated(frame: pd.DataFrame, cols: list[str], keep: str | bool = "first") -> np.ndarray:
    """``frame.duplicated(cols, keep=keep)`` as a bool array, fast on millions of rows.

    A 64-bit hash of each row's key finds the candidates (rows whose hash repeats; a true duplicate
    always does), and pandas' exact test runs on those few rows only: the answer is exactly pandas',
    since a row with a unique hash can be a duplicate of nothing.
    """
    if len(frame) < 100_000:
        return frame.duplicated(cols, keep=keep).to_numpy()
    h = pd.util.hash_pandas_object(frame[cols], index=False).to_numpy()
    cand = pd.Series(h).duplicated(keep=False).to_numpy()
    out = np.zeros(len(frame), dtype=bool)
    if cand.any():
        idx = np.flatnonzero(cand)
        out[idx] = frame.iloc[idx].duplicated(cols, keep=keep).to_numpy()
    return out


def _check_plausible(frame: pd.DataFrame, table: RawTable, config: DataConfig, report: ValidationReport):
    """Values outside their variable's plausible range (:mod:`core.data.plausibility`): one finding per
    variable with the count, examples and the range; excluded unless ``config.keep_implausible``.
    'Unknown' codes are left to the sentinel rule."""
    from core.data.plausibility import implausible_mask
    if not len(frame):
        return frame
    bad = implausible_mask(frame["variable"], frame["value"].to_numpy(), config.sentinel_values)
    if not bad.any():
        return frame
    names = frame.loc[bad, "variable"].astype(str)
    drop = np.zeros(len(frame), dtype=bool)
    for name, n in names.value_counts().items():
        mask = bad & (frame["variable"] == name).to_numpy(dtype=bool)
        _report_implausible(name, int(n), _examples(frame, mask, table, ["patient_id", "variable", "value_raw"]),
                            config, report)
        if not config.keep_implausible:
            drop |= mask
    if drop.any():
        report.exclude("implausible_value", int(drop.sum()))
        frame = frame[~drop].reset_index(drop=True)
    return frame


def _report_implausible(name: str, n: int, examples: list, config: DataConfig, report: ValidationReport) -> None:
    """One finding for ``n`` values of ``name`` outside its plausible range: excluded, or kept when asked."""
    from core.data.plausibility import lookup
    r = lookup(name)
    unit = f" {r.unit}" if r.unit else ""
    what = f"{name}: {n:,} value(s) outside the plausible range {r.low:g} to {r.high:g}{unit}"
    if config.keep_implausible:
        report.warning("implausible_kept", what + " (kept, as asked)", count=n, examples=examples,
                       fix=f"Check the unit ({r.unit or 'unitless'} expected) and the source of these values.")
    else:
        report.add("warning", "implausible_value", what + " were excluded", count=n, examples=examples,
                   fix=f"If they are real measurements in another unit, convert them to {r.unit or 'the expected scale'}; "
                       "to use them as they are, choose to keep implausible values.")


def _check_plausible_static_columns(frame: pd.DataFrame, patient: str, cols: list, table: RawTable,
                                    config: DataConfig, report: ValidationReport) -> pd.DataFrame:
    """Wide layout: the static columns (Age, Gender... constant per patient) checked like the series.

    Implausible cells are reported per column and, unless ``config.keep_implausible``, set to missing in
    a copy of the columns (the user's table is never changed) and counted as excluded observations.
    """
    from core.data.plausibility import implausible_mask
    changed = {}
    for c in cols:
        values = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        bad = implausible_mask(np.full(len(values), str(c), dtype=object), values, config.sentinel_values)
        if not bad.any():
            continue
        idx = np.flatnonzero(bad)[:3]
        examples = [(f"row {int(frame['_line'].iat[i])}" if "_line" in frame else
                     f"patient {clip_text(frame[patient].iat[i])}")
                    + f": {clip_text(c)}={show_value(_plain(frame[c].iat[i]))}" for i in idx]
        _report_implausible(str(c), int(bad.sum()), examples, config, report)
        if not config.keep_implausible:
            changed[c] = frame[c].mask(bad)
            report.exclude("implausible_value", int(bad.sum()))
    return frame.assign(**changed) if changed else frame


def _clean_category(s: pd.Series) -> pd.Series:
    """Text ids/names as a categorical of stripped str (``132539.0`` -> ``"132539"``); blank -> NaN.

    Works on the distinct values only, so it costs little on millions of rows.
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    u = pd.Series(uniques)
    if pd.api.types.is_float_dtype(u):
        u = u.map(lambda x: str(int(x)) if float(x).is_integer() else str(x))
    else:
        u = u.astype(str).str.strip()
    remap, final = pd.factorize(u)
    final = pd.Index(final)
    blank = final.get_indexer([""])[0] if "" in final else -2
    remap = np.where(remap == blank, -1, remap)
    new_codes = np.where(codes >= 0, remap[np.maximum(codes, 0)] if len(remap) else -1, -1)
    if blank >= 0:  # drop the "" category, shifting codes above it
        new_codes = np.where(new_codes > blank, new_codes - 1, new_codes)
        final = final.delete(blank)
    return pd.Series(pd.Categorical.from_codes(new_codes, categories=final), index=s.index)


def _exclude(frame: pd.DataFrame, mask: np.ndarray, code: str, report: ValidationReport, table: RawTable,
             message: str, fix: str, cols: list[str], level: str = "warning") -> pd.DataFrame:
    mask = np.asarray(mask, dtype=bool)
    n = int(mask.sum())
    if not n:
        return frame
    report.add(level, code, message + " were excluded" if not message.endswith("kept once") and
               "excluded" not in message else message, count=n, examples=_examples(frame, mask, table, cols), fix=fix)
    report.exclude(code, n)
    return frame[~mask].reset_index(drop=True)


def _first_times(frame: pd.DataFrame) -> np.ndarray:
    """Each row's patient's first time (the events' ``patient_id`` is a categorical)."""
    codes = frame["patient_id"].cat.codes.to_numpy()
    first = np.full(len(frame["patient_id"].cat.categories) + 1, np.inf)
    np.minimum.at(first, codes, frame["time_hours"].to_numpy()) if len(codes) < 100_000 else \
        _min_by_code(first, codes, frame["time_hours"].to_numpy())
    return first[codes]


def _min_by_code(out: np.ndarray, codes: np.ndarray, values: np.ndarray) -> None:
    """``np.minimum.at(out, codes, values)``, fast: sort once, then reduce each run of equal codes."""
    order = np.argsort(codes, kind="stable")
    c, v = codes[order], values[order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    out[c[starts]] = np.minimum(out[c[starts]], np.minimum.reduceat(v, starts))


def _variable_spread(frame: pd.DataFrame, at_first: np.ndarray) -> pd.DataFrame:
    """Per variable (in order of first appearance): whether every row is at its patient's first
    record (``all_first``), its rows (``n``) and its distinct patients (``np_``)."""
    var = frame["variable"]
    vcodes, vuniq = pd.factorize(var, sort=False)
    pcodes = frame["patient_id"].cat.codes.to_numpy().astype(np.int64)
    k = len(vuniq)
    n = np.bincount(vcodes, minlength=k)
    not_first = np.bincount(vcodes, weights=~at_first, minlength=k)
    pairs = pd.unique(vcodes.astype(np.int64) * (int(pcodes.max(initial=0)) + 1) + pcodes)
    n_pat = np.bincount((pairs // (int(pcodes.max(initial=0)) + 1)).astype(np.int64), minlength=k)
    return pd.DataFrame({"all_first": not_first == 0, "n": n, "np_": n_pat}, index=pd.Index(vuniq))


def _split_static(frame: pd.DataFrame, config: DataConfig, report: ValidationReport):
    if not len(frame):
        return pd.DataFrame(index=pd.Index([], name="patient_id")), frame
    names = config.static_variables
    cats = pd.Series(frame["variable"].unique())
    if names is None:
        known = [v for v in cats if _norm(v) in _STATIC_NAMES]
        # Unknown variables observed at most once per patient and only at the first record are static too.
        first_t = _first_times(frame)
        at_first = frame["time_hours"].to_numpy() == first_t
        agg = _variable_spread(frame, at_first)
        n_pat = frame["patient_id"].nunique()
        auto = [v for v, r in agg.iterrows() if r.all_first and r.n == r.np_ and r.np_ >= 0.5 * n_pat and n_pat > 1
                and v not in known]
        names = known + auto
    else:
        names = [v for v in cats if v in names]
    if not names:
        return pd.DataFrame(index=pd.Index([], name="patient_id")), frame
    is_static_var = frame["variable"].isin(names).to_numpy()
    first_t = _first_times(frame)
    # A descriptor recorded at the first record is the attribute; later records of the same
    # variable (e.g. Weight re-measured) stay a time series.
    take = is_static_var & (frame["time_hours"].to_numpy() <= first_t + 1e-9)
    st_rows = frame[take]
    static = st_rows.pivot_table(index="patient_id", columns="variable", values="value", aggfunc="first",
                                 observed=True)
    static.columns = [str(c) for c in static.columns]
    static.index = static.index.astype(str)
    static.index.name = "patient_id"
    report.summary["_static_rows"] = int(report.summary.get("_static_rows", 0)) + int(take.sum())
    report.info("static_attributes", f"Static attributes (one value per patient, taken from the first record): "
                f"{', '.join(map(str, names))}", count=int(take.sum()))
    return static, frame[~take].reset_index(drop=True)


def _apply_static_sentinels(static: pd.DataFrame, config: DataConfig, report: ValidationReport) -> pd.DataFrame:
    if not config.sentinel_values or static.empty:
        return static
    static = static.apply(pd.to_numeric, errors="coerce")
    mask = static.isin(config.sentinel_values)
    n = int(mask.to_numpy().sum())
    if n:
        per_col = mask.sum()
        report.warning("static_sentinel", "Static attributes holding an 'unknown' code were set to missing: "
                       + ", ".join(f"{c} {int(k):,}" for c, k in per_col[per_col > 0].items()),
                       count=n, unit="values", examples=[f"patient {clip_text(p)}" for p in static.index[mask.any(axis=1)][:3]],
                       fix="Nothing to do if the code means unknown; change it with --sentinel otherwise.")
        static = static.mask(mask)
    return static


# -- labels -------------------------------------------------------------------------

def _binary_labels(values: pd.Series, col: str, report: ValidationReport) -> pd.Series | None:
    v = values.dropna()
    uniq = sorted(_plain(u) for u in pd.unique(v))
    if set(uniq) <= {0, 1}:
        out = v.astype("int8")
    elif len(uniq) == 2:
        report.error("target_not_binary", f"The target {col!r} has the two values {uniq}, not 0/1.",
                     count=len(v), unit="patients",
                     fix=f"Recode it as 0 (no event) and 1 (event), e.g. {uniq[0]} -> 0 and {uniq[1]} -> 1.")
        return None
    else:
        shown = ", ".join(f"{u:g}" for u in uniq[:6]) + (" ..." if len(uniq) > 6 else "")
        report.error("target_not_binary", f"The target {col!r} is not binary: it has {len(uniq)} distinct values "
                     f"({shown}).", count=len(v), unit="patients",
                     fix="Choose a 0/1 outcome column with --target (e.g. in_hospital_death), or threshold this one.")
        return None
    out.name = col
    return out


def _open_labels(labels: Source | None, table: RawTable, config: DataConfig, report: ValidationReport):
    """Read the labels file (or the source's outcomes table) and find its patient id column.

    Returns ``(frame, name, patient_column, columns)``, or ``None`` after reporting why not.
    """
    if labels is not None:
        try:
            lt = read_table(labels, check=memory_check(config))
        except DataReadError as err:
            report.error("unreadable_labels", str(err), fix="Re-export the labels file as CSV.")
            return None
        frame, name = lt.frame, lt.name
        for note in lt.notes:
            report.info("read", f"{name}: {note}")
    else:
        frame, name = table.outcomes, f"{table.name} (outcomes file)"
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    cols = list(frame.columns)
    if config.label_patient_col is not None and config.label_patient_col not in cols:
        report.error("labels_columns", f"Column {config.label_patient_col!r} (--label-patient-col) is not in {name}.",
                     fix=_columns_fix(cols, "--label-patient-col", "patient id"))
        return None
    pcol = config.label_patient_col or _find(cols, _PATIENT_NAMES, set())
    if pcol is None:
        report.error("labels_columns", f"No patient id column was recognised in {name}.",
                     fix=_columns_fix(cols, "--label-patient-col", "patient id"))
        return None
    return frame, name, pcol, cols


def _clean_label_ids(frame: pd.DataFrame, pcol: str) -> pd.DataFrame:
    """Patient ids of a labels file as stripped text (``132539.0`` -> ``"132539"``); rows without one dropped."""
    pid = frame[pcol]
    pid = (pid.astype("Int64") if pd.api.types.is_float_dtype(pid) else pid).astype("string").str.strip()
    frame = frame.assign(**{pcol: pid})
    return frame[frame[pcol].notna() & (frame[pcol] != "")]


def _other_outcomes(frame: pd.DataFrame, cols: list, pcol: str, target: str, name: str,
                    report: ValidationReport) -> pd.DataFrame | None:
    """The labels file's columns besides patient and target: outcomes kept aside, never features."""
    other_cols = [c for c in cols if c not in (pcol, target)]
    if not other_cols:
        return None
    leaky = [c for c in other_cols if _LEAKY.search(c)]
    report.warning("leakage_outcomes", f"{name} holds other columns ({', '.join(other_cols)}). They are outcomes "
                   f"or scores recorded after the prediction time{' (e.g. ' + ', '.join(leaky[:3]) + ')' if leaky else ''}, "
                   "so they are kept aside and never used as features.", count=len(other_cols), unit="columns",
                   fix="Nothing to do. To predict one of them instead, choose it with --target.")
    other = frame.set_index(pcol)[other_cols]
    other.index.name = "patient_id"
    return other[~other.index.duplicated()]


def _match_column(name: str | None, cols) -> str | None:
    """``name`` as the file spells it: a column of ``cols`` equal to it after normalising (case, spaces,
    punctuation), when it is not there as given; ``name`` itself otherwise."""
    if name is None or name in cols:
        return name
    return {_norm(c): c for c in cols}.get(_norm(name), name)


def _read_labels(labels: Source | None, table: RawTable, config: DataConfig, report: ValidationReport):
    opened = _open_labels(labels, table, config, report)
    if opened is None:
        return None, None, config.target
    frame, name, pcol, cols = opened
    target = _match_column(config.target, cols)
    if target is None:
        cands = [c for c in cols if c != pcol and _norm(c) in _TARGET_NAMES]
        if len(cands) != 1:
            binary = [c for c in cols if c != pcol and set(pd.to_numeric(frame[c], errors="coerce").dropna().unique())
                      <= {0, 1}]
            cands = cands or binary
        if len(cands) != 1:
            report.error("no_target", f"Which column of {name} is the outcome? Candidates: {cands or cols}.",
                         fix="Name it with --target (e.g. --target in_hospital_death).")
            return None, None, None
        target = cands[0]
    if target not in cols:
        report.error("no_target", f"The target column {target!r} is not in {name}.",
                     fix=_columns_fix(cols, "--target", "outcome"))
        return None, None, target
    frame = _clean_label_ids(frame, pcol)
    vals = pd.to_numeric(frame[target], errors="coerce")
    nonnum = vals.isna() & frame[target].notna() & (frame[target].astype(str).str.strip() != "")
    if nonnum.any():
        mapped = frame[target].astype(str).str.strip().str.lower().map(
            {"true": 1, "false": 0, "yes": 1, "no": 0, "y": 1, "n": 0, "died": 1, "dead": 1, "alive": 0,
             "survived": 0})
        if mapped[nonnum].notna().all():
            vals = vals.fillna(mapped)
            report.info("target_text", f"Text labels in {target!r} were read as 0/1 (yes/true -> 1).")
        else:
            ex = frame.loc[nonnum & mapped.isna(), [pcol, target]].head(3)
            report.error("target_not_numeric", f"The target {target!r} has values that are not 0/1.",
                         count=int((nonnum & mapped.isna()).sum()), unit="patients",
                         examples=[f"patient {clip_text(a)}: {show_value(b)}" for a, b in ex.itertuples(index=False)],
                         fix="Recode the outcome as 0/1.")
            return None, None, target
    lab = pd.DataFrame({"p": frame[pcol].to_numpy(), "v": vals.to_numpy()})
    n_missing = int(lab["v"].isna().sum())
    if n_missing:
        report.warning("label_missing", f"Patients with an empty {target!r} are unlabelled (kept for exploration, "
                       "not for training)", count=n_missing, unit="patients",
                       examples=[f"patient {clip_text(p)}" for p in lab.loc[lab["v"].isna(), "p"].head(3)],
                       fix="Fill in the outcome, or leave them out of the labels file.")
    lab = lab.dropna()
    nun = lab.groupby("p")["v"].nunique()
    conflict = nun[nun > 1]
    if len(conflict):
        report.error("label_conflict", "Patients with conflicting labels (listed twice with different outcomes).",
                     count=len(conflict), unit="patients", examples=[f"patient {clip_text(p)}" for p in conflict.index[:3]],
                     fix="Keep one outcome per patient in the labels file.")
        return None, None, target
    dup = lab["p"].duplicated()
    if dup.any():
        report.warning("label_duplicate", "Patients listed more than once in the labels file (same outcome; kept once).",
                       count=int(dup.sum()), unit="rows", fix="De-duplicate the labels file.")
    series = lab.drop_duplicates("p").set_index("p")["v"]
    series.index.name = "patient_id"
    out = _binary_labels(series, target, report)
    return out, _other_outcomes(frame, cols, pcol, target, name, report), target


# -- online (hour-by-hour) labels -------------------------------------------------------

_EMPTY_TEXT = ["", "nan", "na", "n/a", "null", "none"]


def _check_label_not_static(config: DataConfig, report: ValidationReport) -> None:
    if config.target is None or config.static_variables is None:
        return
    hit = [v for v in config.static_variables if v == config.target or _norm(v) == _norm(config.target)]
    if hit:
        report.error("label_is_static", f"The label {config.target!r} is also listed as a static variable "
                     f"({hit[0]!r} in --static); a label column is never a feature.",
                     fix=f"Remove {hit[0]!r} from --static (DataConfig.static_variables).")


def _parse_text_numbers(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(values, empty)``: float values (NaN where not a number) and where the cell is empty."""
    if pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw):
        vals = raw.to_numpy(dtype="float64", na_value=np.nan)
        return vals, np.isnan(vals)
    text = raw.astype("string").str.strip()
    vals = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    empty = text.isna().to_numpy(dtype=bool) | text.str.lower().isin(_EMPTY_TEXT).fillna(True).to_numpy(dtype=bool)
    return vals, empty


def _hour_labels_from_rows(rows: pd.DataFrame, target: str, table: RawTable, config: DataConfig,
                           report: ValidationReport) -> tuple[pd.DataFrame | None, pd.Series | None]:
    """Hour labels from a 0/1 label of the events (one per patient and time, the max of its rows).

    ``rows`` holds ``patient_id``, ``time_hours``, the raw label ``_label`` (and ``_line``). The
    onset is each patient's first labelled-1 time plus ``config.horizon_hours`` (0 when unset).
    """
    vals, empty = _parse_text_numbers(rows["_label"])
    shown = rows.rename(columns={"_label": target})
    cols = ["patient_id", "time_hours", target]
    bad = ~empty & ~np.isin(vals, (0.0, 1.0))
    if bad.any():
        uniq = [f"{v:g}" if np.isfinite(v) else show_value(str(r).strip(), 40)
                for v, r in pd.DataFrame({"v": vals[bad], "r": rows["_label"].to_numpy()[bad]}).drop_duplicates("r")
                .itertuples(index=False)]
        listed = ", ".join(dict.fromkeys(uniq[:6])) + (" ..." if len(uniq) > 6 else "")
        report.error("hour_label_not_binary", f"The hour label {target!r} has values that are not 0/1 ({listed}).",
                     count=int(bad.sum()), examples=_examples(shown, bad, table, cols),
                     fix="Recode it as 0 (no event at that hour) and 1 (event), or name the right 0/1 column "
                         "with --target.")
        return None, None
    if empty.any():
        report.warning("hour_label_missing", f"Rows whose hour label {target!r} is empty: those hours are not "
                       "scored", count=int(empty.sum()), examples=_examples(shown, empty, table, cols),
                       fix="Fill in 0 or 1 for every hour to score, or ignore this if those hours are unlabelled "
                           "on purpose.")
    keep = ~empty
    hl = pd.DataFrame({"patient_id": rows["patient_id"].astype(str).to_numpy()[keep],
                       "time_hours": rows["time_hours"].to_numpy()[keep], "label": vals[keep].astype("int8")})
    hl = hl.groupby(["patient_id", "time_hours"], sort=False)["label"].max().reset_index()
    n_values = hl.groupby("patient_id", sort=False)["label"].nunique()
    if len(n_values) and (n_values <= 1).all():
        pos = hl.loc[hl["label"] == 1, "patient_id"].unique()
        report.warning("hour_label_constant", f"The hour label {target!r} never changes within a patient: it looks "
                       "like a once-per-stay outcome, not a label per hour.", count=len(n_values), unit="patients",
                       examples=[f"patient {clip_text(p)}" for p in (pos if len(pos) else n_values.index)[:3]],
                       fix="Choose the stay task (--task stay, or DataConfig(task='stay')) for a once-per-stay outcome.")
    first_pos = hl["time_hours"].where(hl["label"] == 1).groupby(hl["patient_id"], sort=False).min()
    onsets = first_pos + (config.horizon_hours or 0.0)
    return hl, onsets


def _hour_labels_from_onsets(labels: Source | None, table: RawTable, row_times: pd.DataFrame, config: DataConfig,
                             report: ValidationReport):
    """Hour labels from an onset-time column of the labels file (hours since the first record).

    With onset ``o`` and horizon ``H``, an hour at ``rel`` hours after the patient's first
    record is 0 when ``rel < o - H``, 1 when ``o - H <= rel < o`` and left out (counted) when
    ``rel >= o``; a patient without an onset is 0 at every hour. Returns ``(hour_labels,
    onsets, other_outcomes, target)``; the first two are ``None`` after a blocking error.
    """
    opened = _open_labels(labels, table, config, report)
    if opened is None:
        return None, None, None, config.target
    frame, name, pcol, cols = opened
    target = _match_column(config.target, cols)
    if target is None:
        cands = [c for c in cols if c != pcol and "onset" in _norm(c)]
        if len(cands) != 1:
            report.error("no_target", f"Which column of {name} holds the onset time (hours since the patient's "
                         f"first record)? Candidates: {cands or [c for c in cols if c != pcol]}.",
                         fix="Name it with --target (e.g. --target onset_hours).")
            return None, None, None, None
        target = cands[0]
    if target not in cols:
        report.error("no_target", f"The onset column {target!r} is not in {name}.",
                     fix=_columns_fix(cols, "--target", "onset time"))
        return None, None, None, target
    if config.horizon_hours is None:
        report.error("horizon_missing", f"The online task with onset times ({target!r} in {name}) needs a horizon: "
                     "how many hours before the onset count as positive.",
                     fix="Give it with --horizon-hours 6 (CLI) or DataConfig(horizon_hours=6).")
        return None, None, None, target
    horizon = float(config.horizon_hours)
    frame = _clean_label_ids(frame, pcol)
    other = _other_outcomes(frame, cols, pcol, target, name, report)
    vals, empty = _parse_text_numbers(frame[target])
    pids = frame[pcol].to_numpy(dtype=object)

    def examples(mask):
        return [f"patient {clip_text(p)}: {target}={show_value(_plain(v))}" for p, v in zip(pids[mask][:3], frame[target][mask][:3])]

    not_number = ~empty & ~np.isfinite(vals)
    negative = ~empty & np.isfinite(vals) & (vals < 0)
    if not_number.any():
        report.error("onset_not_numeric", f"Onset times in {target!r} that are not a number of hours",
                     count=int(not_number.sum()), examples=examples(not_number),
                     fix="Give the onset as hours since the patient's first record (e.g. 12.5), or leave it empty "
                         "when the event never happened.")
    if negative.any():
        report.error("onset_negative", f"Negative onset times in {target!r} (before the patient's first record)",
                     count=int(negative.sum()), examples=examples(negative),
                     fix="Onsets are hours since the patient's first record (>= 0): shift them, or leave the cell "
                         "empty when the event never happened.")
    if not_number.any() or negative.any():
        return None, None, other, target
    lab = pd.DataFrame({"p": pids, "v": np.where(empty, np.nan, vals)})
    n_onsets = lab.groupby("p")["v"].nunique(dropna=False)
    conflict = n_onsets[n_onsets > 1]
    if len(conflict):
        report.error("onset_conflict", f"Patients listed more than once in {name} with different onsets "
                     f"({target!r})", count=len(conflict), unit="patients",
                     examples=[f"patient {clip_text(p)}" for p in conflict.index[:3]],
                     fix="Keep one onset per patient in the labels file (empty = never).")
        return None, None, other, target
    onset = lab.drop_duplicates("p").set_index("p")["v"]

    rt_pid = row_times["patient_id"].astype(str).to_numpy(dtype=object)
    t = row_times["time_hours"].to_numpy(dtype="float64")
    span = pd.DataFrame({"p": rt_pid, "t": t}).groupby("p")["t"].agg(["min", "max"])
    first = span["min"].reindex(rt_pid).to_numpy()
    rel = t - first
    o = onset.reindex(rt_pid).to_numpy(dtype="float64")   # NaN: never, or not in the labels file
    in_file = pd.Index(onset.index).get_indexer(rt_pid) >= 0
    after = rel >= o                                       # False where o is NaN
    label = ((rel >= o - horizon) & ~after).astype("int8")
    keep = in_file & ~after
    hl = pd.DataFrame({"patient_id": rt_pid[keep], "time_hours": t[keep], "label": label[keep]})

    n_after = int((in_file & after).sum())
    report.summary["_after_onset"] = n_after
    if n_after:
        report.info("hours_after_onset", f"{n_after:,} hours at or after onset were left out (not scored): once the "
                    "event has happened there is nothing left to predict.", count=n_after, unit="hours",
                    examples=[f"patient {clip_text(p)}" for p in pd.unique(rt_pid[in_file & after])[:3]])
    common = span.index.intersection(onset.index)
    last_rel = (span["max"] - span["min"]).loc[common]
    late = onset.loc[common] > last_rel
    if late.any():
        report.warning("onset_after_data", "Patients whose onset is after their last record: their positive window "
                       "may lie outside the data", count=int(late.sum()), unit="patients",
                       examples=[f"patient {p}: onset {onset[p]:g} h, last record at {last_rel[p]:g} h"
                                 for p in late[late].index[:3]],
                       fix="Check that onsets are hours since each patient's first record; nothing to do if the "
                           "data end before the event.")
    orphan = sorted(set(onset.index) - set(span.index))
    _report_orphan_labels(report, orphan, len(onset), list(span.index[:2]))
    onsets = span["min"].loc[common] + onset.loc[common]
    return hl, onsets, other, target


def _hour_label_counts(cohort: Cohort) -> dict[str, object]:
    """Summary lines of an online cohort: labelled hours, positive hours (share), positive patients."""
    hl = cohort.hour_labels
    n, pos = len(hl), int(hl["label"].sum())
    return {"labelled hours": n, "positive hours": f"{pos:,} ({pos / n:.2%})" if n else "0",
            "patients with a positive hour": int(hl.loc[hl["label"] == 1, "patient_id"].nunique())}


def _report_orphan_labels(report: ValidationReport, orphan: list, n_labels: int, event_ids: list) -> None:
    """Labels whose patient has no events: a warning, and a blocking error when no label matches at all."""
    if not orphan:
        return
    report.warning("labels_without_patients", "Labels whose patient has no data in the events file (ignored)",
                   count=len(orphan), unit="patients", examples=[f"patient {clip_text(p)}" for p in orphan[:3]],
                   fix="Check that both files use the same patient ids (e.g. no leading zeros lost).")
    if len(orphan) == n_labels:
        report.error("ids_disjoint", "No patient id of the labels file matches the events file.",
                     examples=[f"events: {event_ids}", f"labels: {orphan[:2]}"],
                     fix="Use the same patient id column and format in both files.")


def _check_labels_vs_patients(cohort: Cohort, config: DataConfig, report: ValidationReport) -> None:
    if cohort.labels is None:
        if config.target is not None and not report.errors:
            report.error("no_labels", "No labels could be attached.", fix="Give --labels and --target.")
        return
    have = set(cohort.patient_ids)
    labelled = set(cohort.labels.index)
    no_label = sorted(have - labelled)
    orphan = sorted(labelled - have)
    if no_label:
        report.warning("patients_without_labels", "Patients with data but no label (kept for exploration, not "
                       "used for training or testing)", count=len(no_label), unit="patients",
                       examples=[f"patient {clip_text(p)}" for p in no_label[:3]],
                       fix="Add their outcome to the labels file, or ignore this if they are unlabelled on purpose.")
    _report_orphan_labels(report, orphan, len(labelled), list(cohort.patient_ids[:2]))
    ids = cohort.labelled_ids
    y = cohort.labels.loc[ids] if len(ids) else cohort.labels.iloc[:0]
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if len(ids) and (n_pos == 0 or n_neg == 0):
        report.error("one_class", f"The target {cohort.target!r} has a single class among the labelled patients "
                     f"({n_pos} positive, {n_neg} negative): nothing to learn.",
                     fix="Check the target column, or add patients of the other class.")
    elif len(ids) < config.min_patients or min(n_pos, n_neg) < config.min_positives:
        report.error("too_few", f"Too few labelled patients to train and test on {cohort.target!r}: {len(ids)} patients, {n_pos} positive, "
                     f"{n_neg} negative (need at least {config.min_patients} patients and {config.min_positives} of "
                     "each class).", fix="Add patients, or explore the data without training.")
