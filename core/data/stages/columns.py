"""Which input column plays which role: column-name candidates, the layout (long or wide), and the names that
look like outcomes (never features).

Column names are compared after lower-casing and dropping ``" _-."`` (:func:`norm_name`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from core.config import DataConfig
from core.exceptions import CohortError
from core.data.validation import show_value

__all__ = ["ColumnMapping", "detect_columns", "norm_name", "find_column", "columns_fix", "match_column",
           "PATIENT_NAMES", "TARGET_NAMES", "STATIC_NAMES", "LEAKY", "PHYSIONET_RENAME"]

# Column-name candidates, compared after lower-casing and dropping " _-.".
PATIENT_NAMES = ["patientid", "patient", "subjectid", "subject", "recordid", "record", "stayid", "icustayid",
                 "hadmid", "encounterid", "encounter", "admissionid", "pid", "id", "mrn"]
_TIME_NAMES = ["timehours", "time", "hours", "hour", "hoursfromadmission", "charttime", "timestamp", "datetime",
               "date", "t", "offset", "elapsed", "reltime", "chartdatetime", "iculos"]
_VARIABLE_NAMES = ["variable", "parameter", "param", "variablename", "item", "itemname", "label", "measurement",
                   "feature", "name", "var", "code", "vital", "test"]
_VALUE_NAMES = ["value", "valuenum", "val", "result", "reading", "measurementvalue", "numericvalue", "amount"]
TARGET_NAMES = ["inhospitaldeath", "mortality", "death", "died", "hospitalexpireflag", "outcome", "label",
                "target", "y", "sepsislabel", "sepsis"]
#: descriptors that are attributes of the stay, not time series (PhysioNet 2012 and common exports).
STATIC_NAMES = {"age", "gender", "sex", "height", "icutype", "weight", "ethnicity", "race", "admissiontype",
                "admissionweight", "bmi", "unittype"}
#: the columns of a PhysioNet 2012 table (``RawTable.fmt == "physionet"``) renamed to names detection recognises.
PHYSIONET_RENAME = {"Time": "time", "Parameter": "variable", "Value": "value"}
#: names that describe what happened after the prediction time: outcomes, never features.
LEAKY = re.compile(r"(length_?of_?stay|\blos\b|^los_|surviv|death|mortal|died|expire|discharge|outcome|"
                   r"readmi|saps|sofa|apache)", re.IGNORECASE)


def norm_name(name: object) -> str:
    """``name`` lower-cased, without spaces, ``_``, ``-`` and ``.``: how column names are compared."""
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


def find_column(columns: list, candidates: list[str], exclude: set) -> str | None:
    """The first of ``candidates`` (normalised names, in order of preference) among ``columns`` (not in ``exclude``)."""
    normed = {norm_name(c): c for c in columns if c not in exclude}
    for cand in candidates:
        if cand in normed:
            return normed[cand]
    return None


def columns_fix(columns: list, flag: str, role: str) -> str:
    """The fix of a missing column: the columns found, and how to name the ``role`` column (``flag`` in the CLI)."""
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
                              + columns_fix(cols, flag, flag[2:-4]))
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
    patient = config.patient_col or find_column(cols, PATIENT_NAMES, used)
    if patient is None:
        raise CohortError("No patient id column was recognised in the events file. "
                          + columns_fix(cols, "--patient-col", "patient id"))
    used.add(patient)
    time = config.time_col or find_column(cols, _TIME_NAMES, used)
    if time is None:
        raise CohortError("No time column was recognised in the events file (expected e.g. 'time', 'hours', "
                          "'charttime'). " + columns_fix(cols, "--time-col", "time"))
    used.add(time)
    target = config.target if config.target in cols else None
    if target:
        used.add(target)
    variable = config.variable_col or find_column(cols, _VARIABLE_NAMES, used)
    value = config.value_col or find_column(cols, _VALUE_NAMES, used | ({variable} if variable else set()))
    layout = config.layout
    if layout == "auto":
        layout = "long" if variable is not None and value is not None else "wide"
    if layout == "long" and (variable is None or value is None):
        missing = "variable" if variable is None else "value"
        raise CohortError(f"Long layout needs a {missing} column, but none was recognised. "
                          + columns_fix(cols, f"--{missing}-col", missing)
                          + " Or use --layout wide for one column per variable.")
    if layout == "wide":
        variable = value = None
        if len([c for c in cols if c not in used]) == 0:
            raise CohortError("The events file has no measurement columns besides patient and time. "
                              + columns_fix(cols, "--variable-col", "variable"))
    return ColumnMapping(layout, patient, time, variable, value, target, group)


def match_column(name: str | None, cols) -> str | None:
    """``name`` as the file spells it: a column of ``cols`` equal to it after normalising (case, spaces,
    punctuation), when it is not there as given; ``name`` itself otherwise."""
    if name is None or name in cols:
        return name
    return {norm_name(c): c for c in cols}.get(norm_name(name), name)

