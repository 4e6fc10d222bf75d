"""Plausible ranges and units of common ICU variables, and the check validation applies with them.

A value outside its variable's range is not a rare patient but an impossible one (pH 735, a
temperature of -17.8 °C, a heart rate of 0 in a patient who is being monitored, a height of
1.8 cm): a unit mix-up, a typo or a filler value. Validation reports such values per variable and,
by default, excludes them (counted as excluded rows); the user can keep them. Variables that are
not in the table are left alone.

How the ranges were chosen: they are the limits of what a living ICU patient can show, set wide on
purpose (they are far outside the normal ranges). Units are those of the PhysioNet/CinC Challenge
2012 (Silva et al., Computing in Cardiology 2012;39:245-8, "General descriptors" and "Time series"
tables) and 2019 (Reyna et al., Crit Care Med 2020;48:210-7, Table 1) data; the same names appear in
MIMIC-style exports. Where exports commonly use two units (glucose, creatinine, albumin and
magnesium in conventional or SI units) the range covers both, so a correct value in either unit is
never excluded; a wrong unit inside that union is not caught. The limits are judgement, not a
standard: checked against the extremes seen in the PhysioNet 2012 and 2019 data themselves (values
beyond them there are the known recording errors, e.g. pH 735 for 7.35) and kept wide where a
survivable extreme exists (core temperature below 25 °C is survivable but not in a monitored ICU
series; such a value is reported, and the user can keep it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PlausibleRange", "RANGES", "lookup", "unit_of", "implausible_mask", "CODES", "describe_value",
           "group_of", "code_table", "codes_from_table", "NAMES", "canonical_name"]


@dataclass(frozen=True)
class PlausibleRange:
    """A variable's unit and the closed interval of values a living ICU patient can have."""

    name: str
    unit: str
    low: float
    high: float
    synonyms: tuple[str, ...] = ()
    #: the usual adult reference interval (drawn as a band on the timeline); ``None`` where units vary.
    normal: tuple[float, float] | None = None


def _r(name, unit, low, high, *synonyms) -> PlausibleRange:
    return PlausibleRange(name, unit, float(low), float(high), tuple(synonyms), _NORMAL.get(name))


#: usual adult reference intervals (common textbook values; a band to read against, not a diagnosis).
_NORMAL = {"HR": (60, 100), "SysABP": (90, 140), "DiasABP": (60, 90), "MAP": (70, 105), "Temp": (36.0, 38.0),
           "RespRate": (12, 20), "SaO2": (95, 100), "pH": (7.35, 7.45), "PaCO2": (35, 45), "PaO2": (80, 100),
           "HCO3": (22, 26), "Lactate": (0.5, 2.0), "K": (3.5, 5.0), "Na": (135, 145), "BUN": (7, 20),
           "HCT": (36, 50), "WBC": (4, 11), "Platelets": (150, 400), "GCS": (15, 15)}


#: canonical name -> range. Names and synonyms are matched case-insensitively, ignoring ``_`` and spaces.
RANGES: dict[str, PlausibleRange] = {r.name: r for r in [
    # vital signs
    _r("HR", "bpm", 20, 300, "heart rate", "heartrate", "pulse", "hr bpm"),
    _r("SysABP", "mmHg", 20, 300, "NISysABP", "SBP", "systolic bp", "sbp_arterial", "arterial blood pressure systolic",
       "non invasive blood pressure systolic", "nbps", "abps"),
    _r("DiasABP", "mmHg", 5, 200, "NIDiasABP", "DBP", "diastolic bp", "arterial blood pressure diastolic",
       "non invasive blood pressure diastolic", "nbpd", "abpd"),
    _r("MAP", "mmHg", 10, 250, "NIMAP", "mean bp", "mean arterial pressure", "MBP", "arterial blood pressure mean",
       "non invasive blood pressure mean", "nbpm", "abpm"),
    _r("Temp", "°C", 25, 45, "temperature", "temp_c", "temperature celsius"),
    _r("RespRate", "breaths/min", 0, 100, "Resp", "respiratory rate", "resp rate", "RR"),
    _r("SaO2", "%", 20, 100, "O2Sat", "SpO2", "oxygen saturation", "o2 saturation pulseoxymetry"),
    _r("EtCO2", "mmHg", 0, 150),
    _r("GCS", "points", 3, 15, "glasgow coma scale", "gcs total"),
    # blood gases
    _r("pH", "", 6.5, 8.0),
    _r("PaCO2", "mmHg", 5, 200, "pCO2"),
    _r("PaO2", "mmHg", 10, 800, "pO2"),
    _r("HCO3", "mmol/L", 2, 60, "bicarbonate"),
    _r("BaseExcess", "mmol/L", -40, 40, "base excess"),
    _r("Lactate", "mmol/L", 0.1, 40, "lactic acid"),
    # chemistry (ranges cover conventional and SI units where both are common)
    _r("Glucose", "mg/dL or mmol/L", 1, 2000),
    _r("Creatinine", "mg/dL or µmol/L", 0.05, 3500),
    _r("BUN", "mg/dL", 1, 300, "urea nitrogen", "blood urea nitrogen"),
    _r("K", "mmol/L", 1, 12, "Potassium"),
    _r("Na", "mmol/L", 90, 200, "Sodium"),
    _r("Chloride", "mmol/L", 50, 160, "Cl"),
    _r("Calcium", "mg/dL or mmol/L", 0.2, 25, "Ca", "calcium total"),
    _r("Mg", "mg/dL or mmol/L", 0.1, 15, "Magnesium"),
    _r("Phosphate", "mg/dL", 0.1, 30, "phosphorus", "phosphorous"),
    _r("Albumin", "g/dL or g/L", 0.5, 70),
    _r("Bilirubin", "mg/dL", 0.01, 80, "Bilirubin_total", "total bilirubin"),
    _r("Bilirubin_direct", "mg/dL", 0.0, 60, "direct bilirubin"),
    _r("ALP", "IU/L", 1, 20000, "Alkalinephos", "alkaline phosphatase"),
    _r("ALT", "IU/L", 1, 30000, "alanine aminotransferase", "SGPT"),
    _r("AST", "IU/L", 1, 40000, "aspartate aminotransferase", "asparate aminotransferase", "SGOT"),
    # blood counts, coagulation
    _r("HCT", "%", 5, 75, "Hct", "hematocrit", "haematocrit"),
    _r("Hgb", "g/dL", 1, 25, "hemoglobin", "haemoglobin"),
    _r("WBC", "10^3/µL", 0.01, 500, "white blood cells", "white blood cell count", "wbc count"),
    _r("Platelets", "10^3/µL", 1, 3000, "platelet count"),
    _r("PTT", "s", 10, 250, "aPTT"),
    _r("Fibrinogen", "mg/dL", 10, 2000),
    # body size and demographics
    _r("Urine", "mL", 0, 10000, "urine output"),
    _r("Weight", "kg", 1, 400, "weight kg", "admission weight"),
    _r("Height", "cm", 30, 250, "height cm"),
    _r("Age", "years", 0, 120),
]}

#: variables with well-known names but no plausibility range (no check is applied to them): canonical name ->
#: synonyms, for matching one source's variables with another's (:mod:`core.data.mapping`), never for validation.
NAMES: dict[str, tuple[str, ...]] = {
    "FiO2": ("inspired o2 fraction", "fraction of inspired oxygen"),
    "TroponinI": ("troponin i",),
    "TroponinT": ("troponin t",),
    "Cholesterol": ("total cholesterol",),
    "MechVent": ("mechanical ventilation", "ventilated"),
    "ICUType": ("icu type", "unit type"),
    "Gender": ("sex",),
}


def _key(name: object) -> str:
    return "".join(str(name).lower().replace("_", " ").split())


_INDEX = {_key(n): r for r in RANGES.values() for n in (r.name, *r.synonyms)}


def _loose(name: object) -> str:
    """Letters and digits only, lower case: ``"Calcium, Total"`` and ``"calcium_total"`` read alike."""
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


_CANONICAL = {**{_loose(n): c for c, names in NAMES.items() for n in (c, *names)},
              **{_loose(n): r.name for r in RANGES.values() for n in (r.name, *r.synonyms)}}


def canonical_name(variable: object) -> str | None:
    """The table's canonical name of ``variable`` (``"DBP"`` -> ``"DiasABP"``, ``"Sex"`` -> ``"Gender"``), matched
    on letters and digits only, case-insensitive; ``None`` for a name the tables do not know."""
    return _CANONICAL.get(_loose(variable))


def lookup(variable: object) -> PlausibleRange | None:
    """The range of ``variable`` (by name or synonym, case-insensitive), ``None`` for unknown variables."""
    return _INDEX.get(_key(variable))


def unit_of(variable: object) -> str:
    """The unit to show beside ``variable`` (empty when unknown or unitless)."""
    r = lookup(variable)
    return r.unit if r is not None else ""


def implausible_mask(variables, values, skip_values=()) -> np.ndarray:
    """Boolean mask of values outside their variable's range (unknown variables: never).

    ``variables`` is an array-like of names (a categorical is cheap: looked up once per category);
    values equal to one of ``skip_values`` (the 'unknown' codes, handled by their own rule) are skipped.
    """
    import pandas as pd
    var = pd.Series(variables)
    cat = var.astype("category")
    lows = np.full(len(cat.cat.categories), -np.inf)
    highs = np.full(len(cat.cat.categories), np.inf)
    for i, name in enumerate(cat.cat.categories):
        r = lookup(name)
        if r is not None:
            lows[i], highs[i] = r.low, r.high
    codes = cat.cat.codes.to_numpy()
    v = np.asarray(values, dtype=float)
    known = codes >= 0
    lo = np.where(known, lows[np.maximum(codes, 0)], -np.inf)
    hi = np.where(known, highs[np.maximum(codes, 0)], np.inf)
    out = (v < lo) | (v > hi)
    if len(skip_values):
        out &= ~np.isin(v, np.asarray(skip_values, dtype=float))
    return out


#: coded attributes -> {code: meaning}: PhysioNet 2012 (Gender 0 = female, 1 = male; ICUType 1 = coronary
#: care unit, 2 = cardiac surgery recovery unit, 3 = medical ICU, 4 = surgical ICU; MechVent 1 = on a
#: ventilator) and 2019 (Gender as in 2012). Codes not listed are shown as they are.
CODES: dict[str, dict[float, str]] = {
    "gender": {0.0: "female", 1.0: "male"},
    "icutype": {1.0: "coronary care unit", 2.0: "cardiac surgery recovery unit", 3.0: "medical ICU",
                4.0: "surgical ICU"},
    "mechvent": {0.0: "not ventilated", 1.0: "mechanically ventilated"},
    "unit1": {0.0: "not medical ICU", 1.0: "medical ICU"},        # PhysioNet 2019: administrative identifiers
    "unit2": {0.0: "not surgical ICU", 1.0: "surgical ICU"},
}


#: the variables drawn as vital signs (everything else in :data:`RANGES` is a laboratory value, except
#: the body measures and demographics of :data:`_BODY`).
_VITALS = {"HR", "SysABP", "DiasABP", "MAP", "Temp", "RespRate", "SaO2", "EtCO2", "GCS"}
_BODY = {"Urine", "Weight", "Height", "Age"}


def group_of(variable: object) -> str | None:
    """``"vital"``, ``"lab"`` (blood gases, chemistry, blood counts), ``"body"`` (urine, weight, height,
    age) for known variables, ``None`` for unknown ones."""
    r = lookup(variable)
    if r is None:
        return None
    return "vital" if r.name in _VITALS else "body" if r.name in _BODY else "lab"


def code_table(variables):
    """The known code meanings of ``variables`` as an editable table: ``variable, code, meaning``.

    Shown to the user (who can correct or extend it for their data: :func:`codes_from_table`).
    """
    import pandas as pd
    rows = [(str(v), code, meaning) for v in variables for code, meaning in CODES.get(_key(v), {}).items()]
    return pd.DataFrame(rows, columns=["variable", "code", "meaning"]).astype({"code": float})


def codes_from_table(table) -> dict[str, dict[float, str]]:
    """The mapping :func:`describe_value` takes, from a ``variable, code, meaning`` table (rows with an
    empty variable, a non-numeric code or an empty meaning are skipped)."""
    import pandas as pd
    out: dict[str, dict[float, str]] = {}
    for v, c, m in table[["variable", "code", "meaning"]].itertuples(index=False):
        code = pd.to_numeric(pd.Series([c]), errors="coerce").iloc[0]
        if v is None or str(v).strip() == "" or code != code or m is None or str(m).strip() in ("", "nan", "None"):
            continue
        out.setdefault(_key(v), {})[float(code)] = str(m).strip()
    return out


def describe_value(variable: object, value: float, codes: dict | None = None) -> str:
    """A value as a clinician reads it: decoded codes (``Gender 1`` -> ``male``), units (``72 kg``), or
    ``unknown`` for a missing value.

    ``codes`` (:func:`codes_from_table`) replaces the built-in :data:`CODES` for the variables it names.
    """
    if value != value:                         # NaN
        return "unknown"
    book = CODES if codes is None else {**CODES, **codes}
    meaning = book.get(_key(variable), {}).get(float(value))
    if meaning is not None:
        return meaning
    unit = unit_of(variable)
    return f"{value:g} {unit}".strip() if unit not in ("", "%") else f"{value:g}{unit}"
