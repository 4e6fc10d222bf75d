"""Times to hours: numbers are hours, ``HH:MM`` is elapsed time, date-times become hours since each patient's first
(plausible) record."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["parse_time_hours", "parse_times", "MIN_YEAR"]

_HHMM = re.compile(r"^\s*\d{1,4}:\d{2}(:\d{2})?\s*$")
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
    hours, fmt, _ = parse_times(raw, patients, fmt, max_time_hours)
    return hours, fmt


def parse_times(raw: pd.Series, patients: pd.Series, fmt: str,
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

