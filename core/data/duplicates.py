"""Duplicate stays: the same ICU stay present under several patient ids.

A copy on each side of the patient split leaks the test set into training (a file that held every
stay ten times scored AUROC 0.999). :func:`find_duplicate_stays` finds them with one content hash
per patient, in time linear in the number of events (no pairwise comparison); :func:`check_duplicate_stays`
turns them into a finding of the :class:`~core.data.validation.ValidationReport`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.data.validation import ValidationReport, clip_text

__all__ = ["DuplicateStays", "find_duplicate_stays", "check_duplicate_stays", "MIN_ROWS", "VALUE_DIGITS"]

#: stays with fewer event rows are never called duplicates: identical short stays happen by chance.
MIN_ROWS = 3
#: significant digits of a value that two copies must share (float noise below them is ignored).
VALUE_DIGITS = 6

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, element-wise on uint64 (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _chain(h: np.ndarray, x: np.ndarray) -> np.ndarray:
    return _mix(h ^ x.astype(np.int64).view(np.uint64))


def _round_significant(values: np.ndarray, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """``values`` rounded to ``digits`` significant digits, as exact integers ``(mantissa, exponent)``.

    Integers compare exactly where rounded floats may differ in their last bit.
    """
    v = np.asarray(values, dtype="float64")
    a = np.abs(v)
    nz = a > 0
    exp = np.zeros(len(v), dtype=np.int64)
    exp[nz] = np.floor(np.log10(a[nz])).astype(np.int64)
    mant = np.rint(v / np.power(10.0, exp - digits + 1))
    over = np.abs(mant) >= 10.0 ** digits          # 9.9999997 rounds up to the next decade
    mant[over] = np.rint(mant[over] / 10.0)
    exp[over] += 1
    return mant.astype(np.int64), exp


@dataclass(frozen=True)
class DuplicateStays:
    """Groups of patient ids whose stays are the same data.

    Attributes
    ----------
    groups : tuple of tuple of str
        Each group's ids sorted (shorter first, then text: ``("p17", "p4017")``), groups by their first
        id alike; only groups of two or more.
    """

    groups: tuple[tuple[str, ...], ...] = ()

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    @property
    def n_patients(self) -> int:
        """Patients in a duplicate group (every copy, the first one included)."""
        return sum(len(g) for g in self.groups)

    @property
    def n_copies(self) -> int:
        """Patients that are a copy of another one (removing them leaves one per group)."""
        return self.n_patients - self.n_groups

    def examples(self, n: int = 3, labels: pd.Series | None = None) -> list[str]:
        """Up to ``n`` groups as ``"p17 = p4017 = p8017"`` (with each id's label when given)."""
        out = []
        for g in self.groups[:n]:
            shown = [clip_text(p, 40) + (f" (label {int(labels[p])})" if labels is not None and p in labels.index
                                         else "") for p in g[:5]]
            out.append(" = ".join(shown) + (f" … ({len(g)} ids)" if len(g) > 5 else ""))
        return out


def find_duplicate_stays(events: pd.DataFrame, static: pd.DataFrame | None = None, *, min_rows: int = MIN_ROWS,
                         value_digits: int = VALUE_DIGITS, time_resolution_hours: float = 1 / 60) -> DuplicateStays:
    """Patients whose events are the same up to a shift of their clock, under different ids.

    Two stays are duplicates when they have the same number of event rows, the same variables
    with the same values at the same times *relative to each patient's first record* (values
    rounded to ``value_digits`` significant digits, times to ``time_resolution_hours``, a minute by
    default), and the same static attributes (rounded alike; a missing one matches only a missing
    one). So an exact copy, a copy with its clock shifted and a copy with float noise below the
    rounding are all found.

    Patients with fewer than ``min_rows`` event rows (default :data:`MIN_ROWS`) are never
    considered: identical short stays (one heart rate at admission) happen by chance.

    Each patient gets a 128-bit content hash (the sums, modulo 2**64, of two 64-bit hashes of its
    rows, so row order does not matter); stays with the same hash, row count and static attributes
    are one group. The cost is linear in the number of rows (about a second for 17 M rows), never
    pairwise. A false match needs a hash collision (odds about 2**-64 per pair of patients).

    Parameters
    ----------
    events : DataFrame
        Long events of a :class:`~core.data.cohort.Cohort`: ``patient_id`` (categorical), ``time_hours``,
        ``variable`` (categorical), ``value``; no exact duplicate rows (ingest keeps them once).
    static : DataFrame, optional
        One row per patient (index patient id), numeric columns.
    min_rows : int
    value_digits : int
        Significant digits kept of each value (default :data:`VALUE_DIGITS`).
    time_resolution_hours : float
        Relative times are rounded to multiples of this.

    Returns
    -------
    DuplicateStays

    Examples
    --------
    >>> ev = pd.DataFrame({"patient_id": pd.Categorical(["a"] * 3 + ["b"] * 3),
    ...                    "time_hours": [0.0, 1.0, 2.0, 5.0, 6.0, 7.0],
    ...                    "variable": pd.Categorical(["HR"] * 6), "value": [80.0, 82, 85, 80, 82, 85]})
    >>> find_duplicate_stays(ev).groups
    (('a', 'b'),)
    """
    if not len(events):
        return DuplicateStays()
    pid = events["patient_id"]
    if not isinstance(pid.dtype, pd.CategoricalDtype):
        pid = pid.astype(str).astype("category")
    var = events["variable"]
    if not isinstance(var.dtype, pd.CategoricalDtype):
        var = var.astype(str).astype("category")
    codes = pid.cat.codes.to_numpy().astype(np.int64)
    n_pat = len(pid.cat.categories)
    t = events["time_hours"].to_numpy(dtype="float64")
    order = None
    if len(codes) > 1 and (np.diff(codes) < 0).any():   # a cohort's events are sorted by patient already
        order = np.argsort(codes, kind="stable")
        codes, t = codes[order], t[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    first_t = np.minimum.reduceat(t, starts)
    counts = np.diff(np.r_[starts, len(codes)])
    rel = t - np.repeat(first_t, counts)
    rel_steps = np.rint(rel / time_resolution_hours).astype(np.int64)
    del t, rel
    mant, exp = _round_significant(events["value"].to_numpy(dtype="float64"), value_digits)
    var_codes = var.cat.codes.to_numpy().astype(np.int64)
    if order is not None:
        mant, exp, var_codes = mant[order], exp[order], var_codes[order]
    h = _mix(rel_steps.view(np.uint64))
    del rel_steps
    h = _chain(h, var_codes)
    h = _chain(h, mant)
    h = _chain(h, exp)
    del mant, exp, var_codes
    h1 = np.add.reduceat(h, starts)
    h2 = np.add.reduceat(_mix(h ^ np.uint64(0x9E3779B97F4A7C15)), starts)
    del h
    present = codes[starts]
    per = pd.DataFrame({"n": counts, "h1": h1.view(np.int64), "h2": h2.view(np.int64)},
                       index=pd.Index(np.asarray(pid.cat.categories)[present].astype(str), name="patient_id"))
    per = per[per["n"] >= min_rows]
    if len(per) < 2 or n_pat < 2:
        return DuplicateStays()
    key = ["n", "h1", "h2"]
    dup = per.duplicated(key, keep=False).to_numpy()
    if not dup.any():
        return DuplicateStays()
    per = per[dup].copy()
    if static is not None and len(static.columns):
        st = static.reindex(per.index)
        st = st.apply(pd.to_numeric, errors="coerce").astype("float64")
        sh = np.zeros(len(st), dtype=np.uint64)
        for c in st.columns:                 # NaN (unknown) hashes as itself, apart from every value
            v = st[c].to_numpy()
            m, e = _round_significant(np.nan_to_num(v, nan=0.0), value_digits)
            sh = _chain(_chain(_chain(sh, m), e), np.isnan(v).astype(np.int64))
        per["hs"] = sh.view(np.int64)
        key.append("hs")
        per = per[per.duplicated(key, keep=False).to_numpy()]
        if not len(per):                     # the same events, different static attributes
            return DuplicateStays()
    gid = per.groupby(key, sort=False).ngroup().to_numpy()
    ids = per.index.to_numpy(dtype=str)
    # Shorter ids first, then text order: p17 before p4017, p2 before p102 (the original usually first).
    srt = np.lexsort((ids, np.char.str_len(ids), gid))
    ids, gid = ids[srt], gid[srt]
    cuts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
    groups = [tuple(str(p) for p in part) for part in np.split(ids, cuts[1:])]
    return DuplicateStays(tuple(sorted(groups, key=lambda g: (len(g[0]), g))))


def _distinct_per_group(found: DuplicateStays, values: pd.Series, dropna: bool = True) -> np.ndarray:
    """How many distinct ``values`` (indexed by patient id) each group of ``found`` holds, in one groupby."""
    gid = np.repeat(np.arange(found.n_groups), [len(g) for g in found.groups])
    ids = [p for g in found.groups for p in g]
    per = pd.DataFrame({"g": gid, "v": values.reindex(ids).to_numpy()})
    return per.groupby("g")["v"].nunique(dropna=dropna).reindex(range(found.n_groups), fill_value=0).to_numpy()


def check_duplicate_stays(found: DuplicateStays, report: ValidationReport, *, trainable: bool,
                          labels: pd.Series | None = None, groups: pd.Series | None = None,
                          group_col: str | None = None) -> None:
    """Record ``found`` in ``report``: a blocking error when it would leak, else a warning.

    The patient split does not exist yet at validation, so the rule is about what the split
    *could* do. Duplicates are an error (code ``duplicate_stays``) when the data would be trained
    on (``trainable``: a target with labels) and some group of copies is not held inside one group
    of the grouping column (``groups``, patient id -> group), since the split could then put copies
    on both sides. They are a warning when the data is only explored, or when every set of copies
    lies within one group (the split keeps groups together). Copies whose labels differ are named
    in a second warning (``contradictory_copies``).
    """
    if not found.n_groups:
        return
    split = list(found.groups)
    if groups is not None:
        split = [g for g, k in zip(found.groups, _distinct_per_group(found, groups, dropna=False)) if k > 1]
    head = (f"{found.n_groups:,} stays appear under several patient ids: {found.n_patients:,} patients whose events "
            f"(times relative to each patient's first record, values to {VALUE_DIGITS} significant digits) and static "
            f"attributes are the same, {found.n_copies:,} of them copies")
    remove = ("Remove the copies (keep one patient id per stay), or give a grouping column that puts each stay's "
              "copies in one group (--group-col subject_id, DataConfig(group_col='subject_id')), so they stay on "
              "one side of the split.")
    if trainable and split:
        where = (f"; {len(split):,} of these sets span several groups of {group_col!r}" if groups is not None else "")
        report.error("duplicate_stays", head + where + ". The patient split would put copies of one stay in training "
                     "and in test, so the test scores would measure memory, not prediction (an AUROC near 1).",
                     count=found.n_patients, unit="patients", examples=found.examples(3) if groups is None else
                     DuplicateStays(tuple(split)).examples(3), fix=remove)
    elif trainable:
        report.warning("duplicate_stays", head + f". Each set lies within one group of {group_col!r}, which the "
                       "split keeps on one side, so the copies do not leak into test; they still count several times "
                       "in training.", count=found.n_patients, unit="patients", examples=found.examples(3),
                       fix="Remove the copies if they are not meant to weigh more.")
    else:
        report.warning("duplicate_stays", head + ". Fine for exploring; before training they would leak across the "
                       "patient split.", count=found.n_patients, unit="patients", examples=found.examples(3),
                       fix=remove)
    if labels is None:
        return
    mixed = [g for g, k in zip(found.groups, _distinct_per_group(found, labels)) if k > 1]
    if mixed:
        report.warning("contradictory_copies", "Copies of one stay carry different labels (the same data, "
                       "opposite outcomes)", count=sum(len(g) for g in mixed), unit="patients",
                       examples=DuplicateStays(tuple(mixed)).examples(3, labels=labels),
                       fix="Check the labels file: the same stay cannot have two outcomes; keep the right one.")
