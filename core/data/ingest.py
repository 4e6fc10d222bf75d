"""From user files to a validated :class:`~core.data.cohort.Cohort`.

``validate_data`` reads the events (and optional labels), detects the layout and columns,
parses times and values, separates static attributes from time series, attaches labels and
records every problem in a :class:`~core.data.validation.ValidationReport`; for the online task it
also builds the per-hour labels (see :func:`validate_data`). Unusable rows are
excluded *and counted*; nothing is dropped silently. ``load_cohort`` is the strict variant
that raises :class:`~core.exceptions.ValidationFailed` when training would be impossible.

The validation runs as stages (:mod:`core.data.stages`), each a function that takes the typed values of the
stages before it (:mod:`core.data.stages.values`) and returns its own: read (:mod:`~core.data.stages.read`) ->
normalise (:mod:`~core.data.stages.normalise`) -> clean (:mod:`~core.data.stages.clean`) -> labels
(:mod:`~core.data.stages.labels`) -> assemble and summarise (:mod:`~core.data.stages.assemble`). This module
runs them in order and is the validation's public API: import its ``__all__`` names from here.
"""
from __future__ import annotations


import pandas as pd

from core.config import DataConfig
from core.data.cohort import Cohort
from core.data.read_limits import source_bytes, source_name
from core.data.readers import Source, env_limit, out_of_memory_message, read_table, validate_limit_mb
from core.data.stages.assemble import assemble_cohort, summarise
from core.data.stages.clean import MAX_VARIABLES, clean_rows
from core.data.stages.columns import (PATIENT_NAMES, PHYSIONET_RENAME, TARGET_NAMES, ColumnMapping, detect_columns,
                                      find_column, norm_name)
from core.data.stages.labels import attach_labels, check_label_not_static
from core.data.stages.normalise import normalise_table
from core.data.stages.read import Progress, estimate_memory, memory_check, read_events
from core.data.stages.times import MIN_YEAR, parse_time_hours
from core.data.validation import ValidationReport
from core.exceptions import CohortError, DataReadError, ValidationFailed

__all__ = ["ColumnMapping", "detect_columns", "inspect_columns", "validate_data", "load_cohort", "parse_time_hours",
           "estimate_memory", "memory_check", "reading_settings", "MAX_VARIABLES", "MIN_YEAR"]


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
                "target_choices": [], "error": out_of_memory_message(source_name(events), None)}


def _inspect_columns(events: Source, labels: Source | None, config: DataConfig) -> dict[str, object]:
    out: dict[str, object] = {"events_columns": [], "mapping": None, "error": None, "labels_columns": [],
                              "target_guess": None, "target_choices": []}
    check = memory_check(config)
    try:
        table = read_table(events, check=check)
        frame = table.frame
        if table.fmt == "physionet":
            frame = frame.rename(columns=PHYSIONET_RENAME)
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
        pcol = find_column(cols, PATIENT_NAMES, set())
        guess = [c for c in cols if c != pcol and norm_name(c) in TARGET_NAMES]
        out["target_guess"] = guess[0] if guess else None
        for c, col in zip(cols, lab_frame.columns):
            if c == pcol:
                continue
            if _is_binary(lab_frame[col]):
                choices.append((c, "0/1"))
            elif "onset" in norm_name(c):
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
        guess = [c for c, kind in choices if norm_name(c) in TARGET_NAMES]
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
                  progress: Progress | None = None) -> tuple[Cohort | None, ValidationReport]:
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
        report.error("out_of_memory", out_of_memory_message(source_name(events), source_bytes(events)),
                     fix="Split the table into smaller files, or validate it on a machine with more free memory.")
        return None, report


def _validate(events: Source, labels: Source | None, config: DataConfig,
              progress: Progress) -> tuple[Cohort | None, ValidationReport]:
    """The stages in order, each taking the values of those before it; a stage that finds a blocking problem
    reports it and returns ``None``, which ends the validation without a cohort."""
    report = ValidationReport()
    online = config.task == "online"
    table = read_events(events, config, report, progress)
    if table is None:
        return None, report
    if online:
        check_label_not_static(config, report)
    # Online task: without a labels file, the hour labels come from the events (column or variable).
    rows = normalise_table(table, config, report, labels_in_events=online and labels is None)
    if rows is None:
        return None, report
    report.rows_read = rows.rows_read
    progress(f"checking {rows.rows_read:,} rows", 0.3)
    clean = clean_rows(rows, config, report)
    if clean is None:
        return None, report
    progress("attaching the labels", 0.7)
    found = attach_labels(labels, table, rows, clean, config, report)
    cohort = assemble_cohort(table, rows, clean, found, config, report, progress)
    if cohort is None:
        return None, report
    summarise(cohort, table, rows, clean, found, config, report)
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


def reading_settings() -> dict[str, str]:
    """How this process reads and checks tables, as environment values (``CHRONOSCOPE_*``): the limits (inflation,
    memory, columns, variables) in force and the engine settings. A validation in another process (a job's worker,
    forked from a server started earlier) runs with these to read exactly as this process would."""
    from core.data import duck, readers
    from core.settings import read_settings
    environ = read_settings().environ
    out = {k: environ[k] for k in (duck.ENGINE_ENV, duck.MIN_MB_ENV, duck.MEMORY_ENV, duck.TMP_ENV)
           if environ.get(k, "").strip()}
    out["CHRONOSCOPE_MAX_INFLATED_MB"] = f"{env_limit('CHRONOSCOPE_MAX_INFLATED_MB', readers.MAX_INFLATED_MB):g}"
    out["CHRONOSCOPE_MAX_VALIDATE_MB"] = f"{validate_limit_mb():g}"
    out["CHRONOSCOPE_MAX_COLUMNS"] = f"{env_limit('CHRONOSCOPE_MAX_COLUMNS', readers.MAX_COLUMNS):g}"
    out["CHRONOSCOPE_MAX_VARIABLES"] = f"{env_limit('CHRONOSCOPE_MAX_VARIABLES', MAX_VARIABLES):g}"
    return out

