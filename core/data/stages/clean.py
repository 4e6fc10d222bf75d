"""Stage 3 of a validation, clean: every row of the long form judged, parsed and kept or excluded under a reason.

Patient ids and variable names are cleaned to text; rows without them, variables that look like outcomes,
unparseable, negative or absurd times, values that are not numbers, empty or infinite, implausible values (unless
kept), 'unknown' codes and exact duplicates are excluded, each reported with examples and counted in
``ValidationReport.rows_excluded``. Descriptors at a patient's first record become static attributes. For the
online task the hours (row times) and the raw hour labels are set aside first
(:class:`~core.data.stages.values.HourRows`). What the stage returns is a :class:`~core.data.stages.values.CleanRows`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.config import DataConfig
from core.data.read_limits import env_limit
from core.data.stages.cells import clean_category, row_examples
from core.data.stages.columns import LEAKY, STATIC_NAMES, norm_name
from core.data.stages.plausible import check_plausible
from core.data.stages.times import MIN_YEAR, parse_times
from core.data.stages.values import CleanRows, HourRows, LongRows
from core.data.validation import ValidationReport, clip_text, show_value

__all__ = ["clean_rows", "MAX_VARIABLES"]

#: the most distinct variables a long table may hold; the environment variable ``CHRONOSCOPE_MAX_VARIABLES``
#: overrides it. Far more usually means the variable column is an id, a note or a value.
MAX_VARIABLES = 5000


def clean_rows(rows: LongRows, config: DataConfig, report: ValidationReport) -> CleanRows | None:
    """Parse, check and exclude row by row; ``None`` after the blocking error ``too_many_variables`` (more distinct
    variables than :data:`MAX_VARIABLES`, refused before any row is judged).

    For the online task, :attr:`CleanRows.hours` holds the row times of the rows kept after the patient and time
    checks, and the raw hour labels found in the events (the ``_label`` column of the long form, or the rows
    whose variable is :attr:`LongRows.label_variable`).
    """
    frame = rows.frame
    n0 = len(frame)
    frame = frame.assign(patient_id=clean_category(frame["patient_id"]),
                         variable=clean_category(frame["variable"]))
    too_many = _too_many_variables(frame["variable"])
    if too_many is not None:
        report.error("too_many_variables", too_many, fix="See the message: map the variable column or filter it.")
        return None
    label_var = _match_variable(frame["variable"], rows.label_variable) if rows.label_variable is not None else None
    if label_var is not None:
        # Long layout: the rows of the label variable are hour labels, never measurements.
        frame = frame.assign(_hour=(frame["variable"] == label_var).to_numpy(dtype=bool),
                             _label=frame["value_raw"])
    frame = _judge_keys(frame, label_var, report)
    frame = _judge_times(frame, config, report)
    hours, n_hours = None, 0
    if config.task == "online":
        frame, hours, n_hours = _split_hours(frame, label_var or config.target)
    frame = _judge_values(frame, report)
    frame = check_plausible(frame, config, report)

    # Static attributes: known descriptors (or configured names) at the patient's first record.
    frame = frame.drop(columns=["time_raw", "value_raw"])
    static, frame, n_static = _split_static(frame, config, report)
    frame = _exclude_sentinels(frame, config, report)
    frame = _exclude_duplicates(frame, report)
    events = frame[["patient_id", "time_hours", "variable", "value"]]
    if len(events) == 0 and n0 > 0:
        report.error("no_usable_rows", "No usable measurement rows remain.",
                     fix="Check the column mapping and the errors above.")
    if rows.static is not None:
        static = static.combine_first(rows.static) if len(static) else rows.static
    static = _apply_static_sentinels(static, config, report)
    return CleanRows(events, static, hours, n_static + rows.static_cells, n_hours)


def _judge_keys(frame: pd.DataFrame, label_var: str | None, report: ValidationReport) -> pd.DataFrame:
    """Rows without a patient id or a variable name, and the variables that look like outcomes, excluded."""
    bad_pid = frame["patient_id"].isna().to_numpy()
    frame = _exclude(frame, bad_pid, "missing_patient_id", report,
                     "Rows without a patient id", "Fill in the patient id, or remove these rows.",
                     ["patient_id", "variable"])

    bad_var = frame["variable"].isna().to_numpy()
    frame = _exclude(frame, bad_var, "empty_variable", report, "Rows with an empty variable name",
                     "Give every measurement a variable name (e.g. HR), or remove these rows.",
                     ["patient_id", "time_raw", "value_raw"])

    leaky_vars = sorted({v for v in frame["variable"].unique() if LEAKY.search(str(v)) and v != label_var})
    if leaky_vars:
        mask = frame["variable"].isin(leaky_vars).to_numpy()
        frame = _exclude(frame, mask, "leakage_variable", report,
                         f"Variables that look like outcomes ({', '.join(clip_text(v) for v in leaky_vars[:6])}) were excluded so they can "
                         "never become features", "If one of them is your target, give it with --target and a "
                         "labels file; otherwise remove it from the events.", ["patient_id", "variable"])
    return frame


def _judge_times(frame: pd.DataFrame, config: DataConfig, report: ValidationReport) -> pd.DataFrame:
    """Times parsed to hours (``time_hours``); absurd, unparseable and negative times excluded."""
    hours, fmt, outlier = parse_times(frame["time_raw"], frame["patient_id"], config.time_format,
                                      config.max_time_hours)
    report.info("time_format", f"Times read as {dict(hours='hours (numbers)', hhmm='HH:MM elapsed', datetime='date-times (hours since each patient first record)')[fmt]}.")
    frame = frame.assign(time_hours=hours)
    frame = _exclude(frame, outlier, "absurd_time", report,
                     f"Rows with an absurd date-time (before {MIN_YEAR}, or more than {config.max_time_hours:,.0f} h "
                     "before the patient's other records, so they do not set the patient's start)",
                     "Correct or remove these date-times (a placeholder such as 0001-01-01 is not a time); if the stay "
                     "really is that long, raise --max-time-hours.", ["patient_id", "time_raw"])
    hours = frame["time_hours"].to_numpy()
    bad_time = np.isnan(hours)
    if len(frame) > 0 and bad_time.mean() > 0.5:
        report.error("time_unparseable", f"Most times ({bad_time.mean():.0%}) could not be parsed as {fmt}.",
                     count=int(bad_time.sum()), examples=row_examples(frame, bad_time, ["time_raw"]),
                     fix="Give times as hours (e.g. 1.5), HH:MM since admission (e.g. 01:30), or ISO date-times "
                         "(2024-01-31 13:45), and set --time-format if auto-detection guessed wrong.")
    frame = _exclude(frame, bad_time, "bad_time", report, "Rows whose time could not be parsed",
                     "Use hours (1.5), HH:MM (01:30) or ISO date-times (2024-01-31T13:45).", ["patient_id", "time_raw"])
    t = frame["time_hours"].to_numpy()
    frame = _exclude(frame, t < 0, "negative_time", report, "Rows with a negative time (before admission)",
                     "Times must be hours since admission (>= 0). Shift them, or remove pre-admission rows.",
                     ["patient_id", "time_raw"])
    t = frame["time_hours"].to_numpy()
    frame = _exclude(frame, t > config.max_time_hours, "absurd_time", report,
                     f"Rows with an absurd time (more than {config.max_time_hours:,.0f} h after admission)",
                     "Check the time unit (hours expected, not minutes or seconds), or raise --max-time-hours.",
                     ["patient_id", "time_raw"])
    return frame


def _judge_values(frame: pd.DataFrame, report: ValidationReport) -> pd.DataFrame:
    """Values parsed to numbers (``value``; decimal commas read, and said); text, empty and infinite values
    excluded."""
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
                           count=int(comma.sum()), examples=row_examples(frame, comma, ["value_raw"]),
                           fix="Export with a decimal point, or use ';' as the delimiter.")
        empty = s.isna().to_numpy(dtype=bool) | (s == "").fillna(True).to_numpy(dtype=bool) | \
            s.str.lower().isin(["nan", "na", "n/a", "null", "none"]).fillna(False).to_numpy(dtype=bool)
        text_bad = np.isnan(values) & ~empty
    frame = frame.assign(value=values)
    frame = _exclude(frame, text_bad, "non_numeric_value", report, "Rows whose value is not a number",
                     "Values must be numeric (e.g. 7.4). Recode text results (e.g. 'positive' -> 1) or remove them.",
                     ["patient_id", "variable", "value_raw"])
    v = frame["value"].to_numpy()
    frame = _exclude(frame, np.isnan(v), "missing_value", report, "Rows with an empty or NaN value",
                     "Remove rows that carry no measurement, or fill in the value.", ["patient_id", "variable"])
    v = frame["value"].to_numpy()
    frame = _exclude(frame, np.isinf(v), "infinite_value", report, "Rows with an infinite value (inf)",
                     "Replace +/-inf with the real measurement or remove the row.", ["patient_id", "variable", "value_raw"])
    return frame


def _exclude_sentinels(frame: pd.DataFrame, config: DataConfig, report: ValidationReport) -> pd.DataFrame:
    """Sentinels in time series: only for variables with no other negative values."""
    if config.sentinel_values and len(frame):
        is_sent = frame["value"].isin(config.sentinel_values).to_numpy()
        if is_sent.any():
            neg_other = frame.loc[(frame["value"] < 0).to_numpy() & ~is_sent, "variable"].unique()
            mask = is_sent & ~frame["variable"].isin(neg_other).to_numpy()
            frame = _exclude(frame, mask, "sentinel_value", report,
                             f"Rows holding an 'unknown' code ({', '.join(f'{s:g}' for s in config.sentinel_values)}) "
                             "in a variable that is otherwise never negative",
                             "Nothing to do if these codes mean 'unknown'; otherwise set --sentinel to the codes "
                             "your export uses (or 'none').", ["patient_id", "variable", "value"], level="warning")
    return frame


def _exclude_duplicates(frame: pd.DataFrame, report: ValidationReport) -> pd.DataFrame:
    """Exact duplicate rows kept once (counted as excluded); several values at one time said, and all kept."""
    dup = _duplicated(frame, ["patient_id", "time_hours", "variable", "value"])
    frame = _exclude(frame, dup, "duplicate_row", report, "Exact duplicate rows (same patient, time, "
                     "variable and value) were kept once", "Nothing to do; de-duplicate the export to silence this.",
                     ["patient_id", "time_hours", "variable"], level="warning")
    same_slot = _duplicated(frame, ["patient_id", "time_hours", "variable"], keep=False)
    if same_slot.any():
        report.info("same_time_values", "Several different values for one variable at the same time (all kept; "
                    "features average them)", count=int(same_slot.sum()),
                    examples=row_examples(frame, same_slot, ["variable", "time_hours", "value"]))
    return frame


def _match_variable(variable: pd.Series, name: str) -> str | None:
    """The variable (category) called ``name``, exactly or after normalising case and ``" _-."``."""
    cats = [str(c) for c in variable.cat.categories]
    if name in cats:
        return name
    normed = [c for c in cats if norm_name(c) == norm_name(name)]
    return normed[0] if len(normed) == 1 else None


def _split_hours(frame: pd.DataFrame, label_name: str | None) -> tuple[pd.DataFrame, HourRows, int]:
    """Record the row times and take the hour entries and raw labels out of the measurements.

    Hour entries (wide layout) and label rows (long layout) are counted as used: they carry an
    hour (and its label), not a measurement. Returns the measurements, the hours and how many rows
    were hour entries.
    """
    row_times = frame[["patient_id", "time_hours"]].drop_duplicates().reset_index(drop=True)
    has_flag = "_hour" in frame
    is_hour = frame["_hour"].to_numpy(dtype=bool) if has_flag else np.zeros(len(frame), dtype=bool)
    labelled = None
    if "_label" in frame:
        carriers = frame[is_hour] if has_flag else frame
        cols = ["patient_id", "time_hours", "_label"] + (["_line"] if "_line" in frame else [])
        labelled = carriers[cols].reset_index(drop=True)
    if has_flag:
        frame = frame[~is_hour].reset_index(drop=True)
    frame = frame.drop(columns=[c for c in ("_hour", "_label") if c in frame])
    return frame, HourRows(row_times, labelled, label_name), int(is_hour.sum())


def _too_many_variables(variable: pd.Series) -> str | None:
    """Why the events hold too many distinct variables (more than :data:`MAX_VARIABLES`), else ``None``: checked
    before any per-variable work."""
    limit = int(env_limit("CHRONOSCOPE_MAX_VARIABLES", MAX_VARIABLES))
    cats = variable.cat.categories
    if len(cats) > limit:
        shown = ", ".join(show_value(str(c), 40) for c in cats[:5])
        return (f"The events hold {len(cats):,} distinct variables, more than the limit of {limit:,} "
                f"(e.g. {shown}). The variable column is probably not a variable name (an id, a note or "
                "a value?): map the right column with --variable-col, keep only the variables you need, "
                "or raise the limit with the environment variable CHRONOSCOPE_MAX_VARIABLES "
                f"(e.g. CHRONOSCOPE_MAX_VARIABLES={limit * 2}).")
    return None


def _exclude(frame: pd.DataFrame, mask: np.ndarray, code: str, report: ValidationReport,
             message: str, fix: str, cols: list[str], level: str = "warning") -> pd.DataFrame:
    """``frame`` without the rows of ``mask``: reported (``code``, with examples of ``cols``) and counted as excluded."""
    mask = np.asarray(mask, dtype=bool)
    n = int(mask.sum())
    if not n:
        return frame
    report.add(level, code, message + " were excluded" if not message.endswith("kept once") and
               "excluded" not in message else message, count=n, examples=row_examples(frame, mask, cols), fix=fix)
    report.exclude(code, n)
    return frame[~mask].reset_index(drop=True)


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


def _split_static(frame: pd.DataFrame, config: DataConfig,
                  report: ValidationReport) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The static attributes (index: patient id), the rows left as time series, and how many rows became
    static: known descriptors (or ``config.static_variables``) at each patient's first record."""
    if not len(frame):
        return pd.DataFrame(index=pd.Index([], name="patient_id")), frame, 0
    names = config.static_variables
    cats = pd.Series(frame["variable"].unique())
    if names is None:
        known = [v for v in cats if norm_name(v) in STATIC_NAMES]
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
        return pd.DataFrame(index=pd.Index([], name="patient_id")), frame, 0
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
    report.info("static_attributes", f"Static attributes (one value per patient, taken from the first record): "
                f"{', '.join(map(str, names))}", count=int(take.sum()))
    return static, frame[~take].reset_index(drop=True), int(take.sum())


def _apply_static_sentinels(static: pd.DataFrame, config: DataConfig, report: ValidationReport) -> pd.DataFrame:
    """Static attributes holding an 'unknown' code (``config.sentinel_values``) set to missing, and reported."""
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


