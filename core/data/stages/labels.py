"""Stage 4 of a validation, labels: each patient's outcome, or for the online task a label per patient-hour.

Stay task: a labels file (or the source's outcomes table, or an events column constant per patient, see
:mod:`core.data.stages.normalise`) gives one 0/1 outcome per patient; its other columns are outcomes kept aside.
Online task: the hour labels come from a 0/1 label of the events that varies by hour, or from an onset-time
column of a labels file and ``DataConfig.horizon_hours``. :func:`attach_labels` returns a
:class:`~core.data.stages.values.Labels`; :func:`check_labels_vs_patients` checks them against the assembled cohort.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.config import DataConfig
from core.data.cohort import Cohort
from core.data.read_limits import RawTable, Source
from core.data.readers import read_table
from core.data.stages.cells import plain_value, row_examples
from core.data.stages.columns import LEAKY, PATIENT_NAMES, TARGET_NAMES, columns_fix, find_column, match_column, norm_name
from core.data.stages.read import memory_check
from core.data.stages.values import CleanRows, Labels, LongRows
from core.data.validation import ValidationReport, clip_text, show_value
from core.exceptions import DataReadError, InternalError

__all__ = ["attach_labels", "binary_labels", "check_label_not_static", "check_labels_vs_patients",
           "hour_label_counts"]


def attach_labels(labels: Source | None, table: RawTable, rows: LongRows, clean: CleanRows, config: DataConfig,
                  report: ValidationReport) -> Labels:
    """The labels of the cohort, from the first source that has them: online, the hour labels of the events,
    else the onsets of the labels file (or outcomes table); stay, the labels file (or outcomes table), else
    the events column of :attr:`LongRows.labels`. A target named but found nowhere is the blocking error
    ``no_target``.

    Raises
    ------
    InternalError
        For the online task when the cleaning stage set no hours aside (it ran as the stay task).
    """
    mapping = rows.mapping
    if config.task != "online":
        if labels is not None or table.outcomes is not None:
            series, other, target = _read_labels(labels, table, config, report)
            return Labels(labels=series, target=target, other_outcomes=other)
        if rows.labels is None and config.target is not None and mapping.target is None:
            report.error("no_target", f"The target {config.target!r} is neither a column of the events file nor "
                         "given in a labels file.", fix="Give the labels file (--labels) or the right --target "
                         "column name.")
        return Labels(labels=rows.labels, target=config.target)
    if clean.hours is None:
        raise InternalError("attach_labels: the online task's cleaning stage set no hours aside")
    if labels is not None and mapping.target is not None:
        report.info("target_column_ignored", f"The events column {mapping.target!r} has the name given with "
                    "--target, but the labels file gives the labels: the column is set aside (never a feature).",
                    fix="Nothing to do; rename the column if it is a measurement.")
    if clean.hours.labelled is not None:
        target = clean.hours.label_name
        hour_labels, onsets = _hour_labels_from_rows(clean.hours.labelled, target, config, report)
        return Labels(target=target, hour_labels=hour_labels, onsets=onsets)
    if labels is not None or table.outcomes is not None:
        return _hour_labels_from_onsets(labels, table, clean.hours.row_times, config, report)
    if config.target is not None:
        report.error("no_target", f"The target {config.target!r} is neither a column nor a variable of the "
                     "events file, nor given in a labels file.",
                     fix="Give the right --target name (e.g. --target SepsisLabel for a 0/1 column per hour), "
                         "or a labels file with an onset-time column (--labels, --target onset_hours).")
    return Labels(target=config.target)


# -- stay: one outcome per patient ------------------------------------------------------

def binary_labels(values: pd.Series, col: str, report: ValidationReport) -> pd.Series | None:
    """``values`` (one per patient) as 0/1 labels named ``col``; ``None`` after the blocking error
    ``target_not_binary``."""
    v = values.dropna()
    uniq = sorted(plain_value(u) for u in pd.unique(v))
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


def _open_labels(labels: Source | None, table: RawTable, config: DataConfig,
                 report: ValidationReport) -> tuple[pd.DataFrame, str, str, list] | None:
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
                     fix=columns_fix(cols, "--label-patient-col", "patient id"))
        return None
    pcol = config.label_patient_col or find_column(cols, PATIENT_NAMES, set())
    if pcol is None:
        report.error("labels_columns", f"No patient id column was recognised in {name}.",
                     fix=columns_fix(cols, "--label-patient-col", "patient id"))
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
    leaky = [c for c in other_cols if LEAKY.search(c)]
    report.warning("leakage_outcomes", f"{name} holds other columns ({', '.join(other_cols)}). They are outcomes "
                   f"or scores recorded after the prediction time{' (e.g. ' + ', '.join(leaky[:3]) + ')' if leaky else ''}, "
                   "so they are kept aside and never used as features.", count=len(other_cols), unit="columns",
                   fix="Nothing to do. To predict one of them instead, choose it with --target.")
    other = frame.set_index(pcol)[other_cols]
    other.index.name = "patient_id"
    return other[~other.index.duplicated()]


def _read_labels(labels: Source | None, table: RawTable, config: DataConfig,
                 report: ValidationReport) -> tuple[pd.Series | None, pd.DataFrame | None, str | None]:
    """Stay task: the labels of the labels file (or the source's outcomes table), its other outcomes and the
    target column; the labels are ``None`` after a blocking error."""
    opened = _open_labels(labels, table, config, report)
    if opened is None:
        return None, None, config.target
    frame, name, pcol, cols = opened
    target = match_column(config.target, cols)
    if target is None:
        cands = [c for c in cols if c != pcol and norm_name(c) in TARGET_NAMES]
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
                     fix=columns_fix(cols, "--target", "outcome"))
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
    out = binary_labels(series, target, report)
    return out, _other_outcomes(frame, cols, pcol, target, name, report), target


# -- online: a label per patient-hour -------------------------------------------------

#: cells that read as empty (no label, no onset).
_EMPTY_TEXT = ["", "nan", "na", "n/a", "null", "none"]


def check_label_not_static(config: DataConfig, report: ValidationReport) -> None:
    """Online task: the blocking error ``label_is_static`` when the label is also listed as a static variable."""
    if config.target is None or config.static_variables is None:
        return
    hit = [v for v in config.static_variables if v == config.target or norm_name(v) == norm_name(config.target)]
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


def _hour_labels_from_rows(rows: pd.DataFrame, target: str, config: DataConfig,
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
                     count=int(bad.sum()), examples=row_examples(shown, bad, cols),
                     fix="Recode it as 0 (no event at that hour) and 1 (event), or name the right 0/1 column "
                         "with --target.")
        return None, None
    if empty.any():
        report.warning("hour_label_missing", f"Rows whose hour label {target!r} is empty: those hours are not "
                       "scored", count=int(empty.sum()), examples=row_examples(shown, empty, cols),
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
                             report: ValidationReport) -> Labels:
    """Hour labels from an onset-time column of the labels file (hours since the first record).

    With onset ``o`` and horizon ``H``, an hour at ``rel`` hours after the patient's first
    record is 0 when ``rel < o - H``, 1 when ``o - H <= rel < o`` and left out (counted) when
    ``rel >= o``; a patient without an onset is 0 at every hour. The hour labels and onsets are ``None``
    after a blocking error.
    """
    opened = _open_labels(labels, table, config, report)
    if opened is None:
        return Labels(target=config.target)
    frame, name, pcol, cols = opened
    target = match_column(config.target, cols)
    if target is None:
        cands = [c for c in cols if c != pcol and "onset" in norm_name(c)]
        if len(cands) != 1:
            report.error("no_target", f"Which column of {name} holds the onset time (hours since the patient's "
                         f"first record)? Candidates: {cands or [c for c in cols if c != pcol]}.",
                         fix="Name it with --target (e.g. --target onset_hours).")
            return Labels()
        target = cands[0]
    if target not in cols:
        report.error("no_target", f"The onset column {target!r} is not in {name}.",
                     fix=columns_fix(cols, "--target", "onset time"))
        return Labels(target=target)
    if config.horizon_hours is None:
        report.error("horizon_missing", f"The online task with onset times ({target!r} in {name}) needs a horizon: "
                     "how many hours before the onset count as positive.",
                     fix="Give it with --horizon-hours 6 (CLI) or DataConfig(horizon_hours=6).")
        return Labels(target=target)
    horizon = float(config.horizon_hours)
    frame = _clean_label_ids(frame, pcol)
    other = _other_outcomes(frame, cols, pcol, target, name, report)
    vals, empty = _parse_text_numbers(frame[target])
    pids = frame[pcol].to_numpy(dtype=object)

    def examples(mask):
        return [f"patient {clip_text(p)}: {target}={show_value(plain_value(v))}" for p, v in zip(pids[mask][:3], frame[target][mask][:3])]

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
        return Labels(target=target, other_outcomes=other)
    lab = pd.DataFrame({"p": pids, "v": np.where(empty, np.nan, vals)})
    n_onsets = lab.groupby("p")["v"].nunique(dropna=False)
    conflict = n_onsets[n_onsets > 1]
    if len(conflict):
        report.error("onset_conflict", f"Patients listed more than once in {name} with different onsets "
                     f"({target!r})", count=len(conflict), unit="patients",
                     examples=[f"patient {clip_text(p)}" for p in conflict.index[:3]],
                     fix="Keep one onset per patient in the labels file (empty = never).")
        return Labels(target=target, other_outcomes=other)
    onset = lab.drop_duplicates("p").set_index("p")["v"]

    hour_labels, onsets, n_after = _label_hours(onset, row_times, horizon, report)
    return Labels(target=target, other_outcomes=other, hour_labels=hour_labels, onsets=onsets,
                  hours_after_onset=n_after)


def _label_hours(onset: pd.Series, row_times: pd.DataFrame, horizon: float,
                 report: ValidationReport) -> tuple[pd.DataFrame, pd.Series, int]:
    """Every row time labelled from its patient's onset (see :func:`_hour_labels_from_onsets`): the hour labels,
    the onsets in the events' hours, and how many hours at or after onset were left out."""
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
    return hl, onsets, n_after


# -- the labels against the cohort ----------------------------------------------------

def hour_label_counts(cohort: Cohort) -> dict[str, object]:
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


def check_labels_vs_patients(cohort: Cohort, config: DataConfig, report: ValidationReport) -> None:
    """The labels against the patients with data: unlabelled patients, labels without data, and whether the
    labelled patients can train (two classes, enough of each: ``one_class``, ``too_few``)."""
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
