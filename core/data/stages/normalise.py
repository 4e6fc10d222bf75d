"""Stage 2 of a validation, normalise: the raw table in the long form, one row per observation, not yet judged.

The layout and the columns are detected (:func:`~core.data.stages.columns.detect_columns`); a wide table is
melted into one row per filled cell, its columns constant within every patient becoming static attributes and
those that look like outcomes set aside; the stay task's labels may come from an events column, and the
grouping column gives each patient's group. What the stage returns is a
:class:`~core.data.stages.values.LongRows`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.config import DataConfig
from core.data.read_limits import RawTable
from core.data.stages.cells import blank_cells, clean_category, count_filled
from core.data.stages.columns import (LEAKY, PHYSIONET_RENAME, STATIC_NAMES, ColumnMapping, detect_columns,
                                      norm_name)
from core.data.stages.labels import binary_labels
from core.data.stages.plausible import check_plausible_static_columns
from core.data.stages.values import LongRows
from core.data.validation import ValidationReport, clip_text, show_value
from core.exceptions import CohortError

__all__ = ["normalise_table"]


def normalise_table(table: RawTable, config: DataConfig, report: ValidationReport, *,
                    labels_in_events: bool = False) -> LongRows | None:
    """The events of ``table`` in the long form; ``None`` after the blocking error ``columns`` (duplicate column
    names, a column that is missing or not recognised).

    Online task only: a wide table gets one *hour entry* per file row (column ``_hour`` True,
    no value), so that a row whose every cell is empty is still an hour; with
    ``labels_in_events`` an events column named by ``config.target`` becomes the raw hour
    label ``_label`` (on the hour entries in the wide layout, on every row in the long one).

    The rows then live on in :attr:`LongRows.frame` only: ``table.frame`` is emptied (one copy in memory, not
    two), and ``table.raw_texts`` is released.
    """
    try:
        rows = _to_long(table, config, report, labels_in_events=labels_in_events)
    except CohortError as err:
        report.error("columns", str(err), fix="Map the columns explicitly (see the message).")
        return None
    table.frame = table.frame.iloc[:0]
    return rows


def _to_long(table: RawTable, config: DataConfig, report: ValidationReport, *, labels_in_events: bool) -> LongRows:
    online = config.task == "online"
    frame = table.frame
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.columns.duplicated().any():
        dup = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise CohortError(f"The events file has duplicate column names: {[clip_text(d) for d in dup[:5]]}. Rename "
                          "them so each is unique.")
    if table.fmt == "physionet":
        frame = frame.rename(columns=PHYSIONET_RENAME)
    mapping = detect_columns(frame, config)
    _report_padded_ids(table, frame, mapping.patient, report)
    line = None if table.first_line is None else np.arange(len(frame)) + table.first_line
    labels = None
    if mapping.target is not None and not online:
        labels = _labels_from_column(frame, mapping, report)
    groups = _groups_from_column(frame, mapping, report) if mapping.group is not None else None
    label_column = mapping.target if labels_in_events else None
    if mapping.layout == "long":
        out = _long_form(frame, mapping, line, label_column, report)
        label_variable = config.target if labels_in_events and mapping.target is None else None
        return LongRows(out, mapping, int(len(frame)), labels=labels, groups=groups, label_variable=label_variable)
    return _wide_form(frame, mapping, line, label_column, config, report, labels=labels, groups=groups)


def _long_form(frame: pd.DataFrame, mapping: ColumnMapping, line: np.ndarray | None, label_column: str | None,
               report: ValidationReport) -> pd.DataFrame:
    """A long table's own rows, its columns renamed to their roles; the columns of no role are reported."""
    pid = frame[mapping.patient]  # rows without an id are counted and excluded in the cleaning stage
    out = pd.DataFrame({"patient_id": pid, "time_raw": frame[mapping.time],
                        "variable": frame[mapping.variable], "value_raw": frame[mapping.value]})
    if line is not None:
        out["_line"] = line
    if label_column is not None:
        out["_label"] = frame[label_column].to_numpy()
    extra = [c for c in frame.columns if c not in (mapping.patient, mapping.time, mapping.variable,
                                                   mapping.value, mapping.target, mapping.group)]
    if extra:
        report.info("extra_columns", f"Columns not used in the long layout: {[clip_text(c) for c in extra[:8]]}",
                    fix="Remove them, or use --layout wide if they are measurements.")
    return out


def _wide_form(frame: pd.DataFrame, mapping: ColumnMapping, line: np.ndarray | None, label_column: str | None,
               config: DataConfig, report: ValidationReport, *, labels: pd.Series | None,
               groups: pd.Series | None) -> LongRows:
    """A wide table melted into one row per filled cell of its series columns (online: plus one hour entry per
    file row); its outcome-like columns set aside, its columns constant within every patient static."""
    online = config.task == "online"
    pid = frame[mapping.patient]
    # The grouping column is neither a measurement nor a static attribute, and holds no observations
    # (so its cells are not in rows_read).
    value_cols = [c for c in frame.columns if c not in (mapping.patient, mapping.time, mapping.target,
                                                        mapping.group)]
    leaky = [c for c in value_cols if LEAKY.search(str(c))]
    n_leaky_cells = count_filled(frame, leaky)
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
    empty = np.concatenate([blank_cells(frame[c]) for c in series_cols]) if series_cols else \
        np.zeros(0, dtype=bool)
    n_cells = int(empty.sum())
    out = out[~empty].reset_index(drop=True)
    if n_cells:
        report.info("wide_empty_cells", f"{n_cells:,} empty cells in the wide table mean 'not measured' "
                    "(normal for sparse data).")
    if online:
        # One hour entry per file row, measured or not: the hours an online model scores.
        hour = base.assign(variable="(hour)", value_raw=np.nan, _hour=True)
        if label_column is not None:
            hour["_label"] = frame[label_column].to_numpy()
        out = pd.concat([out.assign(_hour=False), hour], ignore_index=True)
    # A wide row holds several observations: count filled cells, so that read = used + excluded
    # adds up whatever happens to each cell (static, series, excluded).
    n_static_read = count_filled(frame, static_cols)
    if static_cols:
        frame = check_plausible_static_columns(frame, mapping.patient, static_cols, config, report)
    n_static_cells = count_filled(frame, static_cols)
    rows_read = int(len(out)) + n_static_read + n_leaky_cells
    report.info("wide_counts", f"Wide layout: the {len(frame):,} file rows hold {rows_read:,} "
                "observations (filled cells" + (", plus one hour entry per file row" if online else "")
                + "); row counts below are observations.")
    static = _static_from_wide(frame, mapping.patient, static_cols) if static_cols else None
    return LongRows(out, mapping, rows_read, static=static, static_cells=n_static_cells, labels=labels,
                    groups=groups)


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


def _constant_columns(frame: pd.DataFrame, patient: str, cols: list, config: DataConfig) -> list:
    if config.static_variables is not None:
        return [c for c in cols if c in config.static_variables]
    g = frame.groupby(frame[patient].astype(str), sort=False)
    nun = g[cols].nunique(dropna=True)
    n_rows = g.size()
    multi_row = n_rows > 1
    if not multi_row.any():
        return [c for c in cols if norm_name(c) in STATIC_NAMES]
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
    return binary_labels(per.first(), col, report)


def _groups_from_column(frame: pd.DataFrame, mapping: ColumnMapping, report: ValidationReport) -> pd.Series | None:
    """The grouping column's value per patient (index: cleaned patient id; values: str), or ``None``.

    Every row of a patient must hold the same group (blank cells are allowed beside it) and every
    patient one: a group that varies within a patient, or a patient without any, is a blocking
    error (the split could not keep the groups apart), and the cohort gets no groups. Works on
    the distinct ids only, so it costs little on millions of rows.
    """
    col = mapping.group
    pcodes, puniq = pd.factorize(frame[mapping.patient], use_na_sentinel=True)
    clean = clean_category(pd.Series(puniq))           # the ids the cleaning stage will give (blank -> NaN)
    ccodes = clean.cat.codes.to_numpy()
    row_p = np.where(pcodes >= 0, ccodes[np.maximum(pcodes, 0)] if len(ccodes) else -1, -1)
    gvals = clean_category(frame[col])
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


