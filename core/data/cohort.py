"""The in-memory cohort every other module works on.

A :class:`Cohort` is what ingestion produces from any supported input format:

* ``events``: long form, one observation per row, columns
  ``patient_id`` (categorical of str), ``time_hours`` (float64, hours since
  the patient's first record or since admission), ``variable`` (categorical
  of str), ``value`` (float64, finite). Sorted by patient, then time.
* ``static``: one row per patient (index ``patient_id``, str), one float
  column per static attribute (Age, Gender, ...); NaN where unknown.
* ``labels``: binary outcome per patient (index ``patient_id``, int8 0/1),
  ``None`` when no target was given.
* ``catalogue``: one row per variable with counts and coverage.
* ``report``: the :class:`~core.data.validation.ValidationReport` of the load.
* ``groups``: optional, the group of each patient (index ``patient_id``, str values), e.g. the
  person behind several stays; the patient split keeps each group on one side. Never a feature.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from core.data.validation import ValidationReport

__all__ = ["Cohort", "EVENT_COLUMNS", "build_catalogue", "make_cohort"]

EVENT_COLUMNS = ("patient_id", "time_hours", "variable", "value")


@dataclass
class Cohort:
    """Events, static attributes, labels and a variable catalogue of one data set."""

    events: pd.DataFrame
    static: pd.DataFrame
    labels: pd.Series | None
    target: str | None
    catalogue: pd.DataFrame
    report: ValidationReport = field(default_factory=ValidationReport)
    source: str = ""
    #: outcome columns found beside the target (never used as features).
    other_outcomes: pd.DataFrame | None = None
    #: online task only: one row per labelled input time, columns ``patient_id`` (str),
    #: ``time_hours`` (float, the events' time axis) and ``label`` (int8 0/1). ``labels`` then holds
    #: each patient's maximum (the stay has a positive hour), which stratifies the patient split.
    hour_labels: pd.DataFrame | None = None
    #: online task only: event onset per patient on the events' time axis (NaN = never), used by
    #: the alarm metrics (warning time before onset).
    onsets: pd.Series | None = None
    #: every distinct ``(patient_id, time_hours)`` of a kept input row, measured or not: the hours
    #: an online run scores (a wide row with every value empty is still an hour).
    row_times: pd.DataFrame | None = None
    #: the group of each patient (index ``patient_id``, str values; ``DataConfig.group_col``): the split
    #: never puts one group on both sides. ``None``: every patient is its own group.
    groups: pd.Series | None = None

    # -- identities -----------------------------------------------------------
    @property
    def patient_ids(self) -> np.ndarray:
        """All patients with at least one event or static attribute, sorted (str). Computed once per set of
        frames (100,000 patients take about 0.1 s to sort, and pages ask on every rerun); a read-only array."""
        frames = (id(self.events), id(self.static))
        cached = self.__dict__.get("_patient_ids")
        if cached is not None and cached[0] == frames:
            return cached[1]
        ids = set(map(str, self.events["patient_id"].cat.categories)) | set(self.static.index)
        out = np.array(sorted(ids), dtype=object)
        out.setflags(write=False)
        self.__dict__["_patient_ids"] = (frames, out)
        return out

    @property
    def labelled_ids(self) -> np.ndarray:
        """Patients that have data *and* a label, sorted (str). These can train and test."""
        if self.labels is None:
            return np.array([], dtype=object)
        have = set(self.patient_ids)
        return np.array(sorted(p for p in self.labels.index if p in have), dtype=object)

    @property
    def series_variables(self) -> list[str]:
        return sorted(map(str, self.events["variable"].cat.categories)) if len(self.events) else []

    @property
    def static_variables(self) -> list[str]:
        return [str(c) for c in self.static.columns]

    @property
    def is_online(self) -> bool:
        """Whether the cohort carries per-hour labels (the online task shape)."""
        return self.hour_labels is not None

    @property
    def n_patients(self) -> int:
        return len(self.patient_ids)

    @property
    def prevalence(self) -> float | None:
        if self.labels is None or not len(self.labels):
            return None
        return float(self.labels.loc[self.labelled_ids].mean()) if len(self.labelled_ids) else None

    # -- slicing --------------------------------------------------------------
    def subset(self, patient_ids) -> "Cohort":
        """A cohort restricted to ``patient_ids`` (order of events kept)."""
        keep = pd.Index([str(p) for p in patient_ids])
        events = self.events[self.events["patient_id"].isin(keep)].copy()
        events["patient_id"] = events["patient_id"].cat.remove_unused_categories()
        static = self.static.loc[self.static.index.intersection(keep)]
        labels = None if self.labels is None else self.labels.loc[self.labels.index.intersection(keep)]

        def rows(frame):
            if frame is None:
                return None
            return frame[frame["patient_id"].astype(str).isin(keep)].reset_index(drop=True)

        onsets = None if self.onsets is None else self.onsets.loc[self.onsets.index.intersection(keep)]
        groups = None if self.groups is None else self.groups.loc[self.groups.index.intersection(keep)]
        return replace(self, events=events.reset_index(drop=True), static=static, labels=labels,
                       catalogue=build_catalogue(events, static), hour_labels=rows(self.hour_labels),
                       onsets=onsets, row_times=rows(self.row_times), groups=groups)

    def patient_events(self, patient_id: str) -> pd.DataFrame:
        """Events of one patient (time-sorted)."""
        ev = self.events
        cats = ev["patient_id"].cat.categories
        code = cats.get_indexer([str(patient_id)])[0]
        if code < 0:
            return ev.iloc[:0].copy()
        # events are sorted by patient code (categories sorted): binary search, not a full scan.
        codes = ev["patient_id"].cat.codes.to_numpy()
        lo, hi = np.searchsorted(codes, code, "left"), np.searchsorted(codes, code, "right")
        return ev.iloc[lo:hi].reset_index(drop=True)

    def fingerprint(self) -> str:
        """A short content hash of events, static attributes, labels and groups (when there are).

        Saved with every run so a result can be traced to the exact data. Computed once per set of
        frames (a cohort's frames are never changed in place; :meth:`subset` and ``replace`` make new ones).
        """
        frames = (id(self.events), id(self.static), id(self.labels), id(self.hour_labels), id(self.groups))
        cached = self.__dict__.get("_fingerprint")
        if cached is not None and cached[0] == frames:
            return cached[1]
        h = hashlib.sha256()
        h.update(pd.util.hash_pandas_object(self.events, index=False).values.tobytes())
        h.update(pd.util.hash_pandas_object(self.static, index=True).values.tobytes())
        if self.labels is not None:
            h.update(pd.util.hash_pandas_object(self.labels, index=True).values.tobytes())
        if self.hour_labels is not None:
            h.update(pd.util.hash_pandas_object(self.hour_labels, index=False).values.tobytes())
        if self.groups is not None:    # groups change the split; without them the hash is as it always was
            h.update(b"groups")
            h.update(pd.util.hash_pandas_object(self.groups, index=True).values.tobytes())
        self.__dict__["_fingerprint"] = (frames, h.hexdigest()[:16])
        return self.__dict__["_fingerprint"][1]


def build_catalogue(events: pd.DataFrame, static: pd.DataFrame) -> pd.DataFrame:
    """One row per variable: unit (:mod:`core.data.plausibility`; empty when unknown), kind, observations,
    patients, coverage and value summary.

    ``coverage`` is the fraction of all patients with at least one observation;
    ``obs_per_patient`` the mean number of observations among those patients.
    """
    pids = events["patient_id"].cat.categories if isinstance(events["patient_id"].dtype, pd.CategoricalDtype) \
        else events["patient_id"].unique()
    n_total = len(set(map(str, pids)) | set(map(str, static.index))) or 1
    rows = []
    if len(events):
        g = events.groupby("variable", observed=True)
        stats = g["value"].agg(["count", "mean", "std", "min", "median", "max"])
        npat = g["patient_id"].nunique()
        for var, s in stats.iterrows():
            rows.append({"variable": str(var), "kind": "time series", "n_obs": int(s["count"]),
                         "n_patients": int(npat[var]), "coverage": npat[var] / n_total,
                         "obs_per_patient": s["count"] / max(npat[var], 1),
                         "mean": s["mean"], "std": s["std"], "min": s["min"],
                         "median": s["median"], "max": s["max"]})
    for col in static.columns:
        v = static[col].dropna()
        rows.append({"variable": str(col), "kind": "static", "n_obs": int(v.size),
                     "n_patients": int(v.size), "coverage": v.size / n_total, "obs_per_patient": 1.0,
                     "mean": v.mean(), "std": v.std(), "min": v.min(), "median": v.median(), "max": v.max()})
    from core.data.plausibility import unit_of
    for r in rows:
        r["unit"] = unit_of(r["variable"])
    cols = ["variable", "unit", "kind", "n_obs", "n_patients", "coverage", "obs_per_patient",
            "mean", "std", "min", "median", "max"]
    return pd.DataFrame(rows, columns=cols)


def _as_str_category(s: pd.Series) -> pd.Series:
    """A categorical with sorted str categories and no unused ones (cheap on millions of rows)."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(str).astype("category")
    s = s.cat.remove_unused_categories()
    cats = s.cat.categories
    if not all(isinstance(c, str) for c in cats):
        s = s.cat.rename_categories([str(c) for c in cats])
    return s.cat.reorder_categories(sorted(s.cat.categories))


def make_cohort(events: pd.DataFrame, static: pd.DataFrame | None = None, labels: pd.Series | None = None,
                *, target: str | None = None, source: str = "", report: ValidationReport | None = None,
                other_outcomes: pd.DataFrame | None = None, hour_labels: pd.DataFrame | None = None,
                onsets: pd.Series | None = None, row_times: pd.DataFrame | None = None,
                groups: pd.Series | None = None) -> Cohort:
    """Build a :class:`Cohort` from already-clean frames, normalising dtypes and order.

    Parameters
    ----------
    events : DataFrame
        Columns ``patient_id, time_hours, variable, value``; values must be finite.
    static : DataFrame, optional
        Index = patient id, one numeric column per static attribute.
    labels : Series, optional
        Index = patient id, values 0/1.
    hour_labels, onsets, row_times : optional
        Online task (see :class:`Cohort`). When ``hour_labels`` is given and ``labels`` is not,
        ``labels`` becomes each patient's maximum hourly label.
    groups : Series, optional
        Index = patient id, the patient's group (e.g. a subject id); values become str.

    Examples
    --------
    >>> ev = pd.DataFrame({"patient_id": ["a", "a"], "time_hours": [0.0, 1.5],
    ...                    "variable": ["HR", "HR"], "value": [80.0, 90.0]})
    >>> make_cohort(ev, labels=pd.Series({"a": 1})).n_patients
    1
    """
    ev = pd.DataFrame({
        "patient_id": _as_str_category(events["patient_id"]),
        "time_hours": events["time_hours"].astype("float64"),
        "variable": _as_str_category(events["variable"]),
        "value": events["value"].astype("float64"),
    })
    ev = ev.sort_values(["patient_id", "time_hours"], kind="stable").reset_index(drop=True)
    if static is None:
        static = pd.DataFrame(index=pd.Index([], name="patient_id", dtype=object))
    static = static.copy()
    static.index = static.index.astype(str)
    static.index.name = "patient_id"
    static = static.astype("float64").sort_index()
    if hour_labels is not None:
        hour_labels = pd.DataFrame({"patient_id": hour_labels["patient_id"].astype(str).to_numpy(),
                                    "time_hours": hour_labels["time_hours"].astype("float64").to_numpy(),
                                    "label": hour_labels["label"].astype("int8").to_numpy()})
        hour_labels = hour_labels.sort_values(["patient_id", "time_hours"], kind="stable").reset_index(drop=True)
        if labels is None:
            labels = hour_labels.groupby("patient_id")["label"].max()
    if row_times is not None:
        row_times = pd.DataFrame({"patient_id": row_times["patient_id"].astype(str).to_numpy(),
                                  "time_hours": row_times["time_hours"].astype("float64").to_numpy()})
        row_times = row_times.drop_duplicates().sort_values(["patient_id", "time_hours"]).reset_index(drop=True)
    if onsets is not None:
        onsets = onsets.astype("float64").copy()
        onsets.index = onsets.index.astype(str)
        onsets.index.name = "patient_id"
    if labels is not None:
        labels = labels.copy()
        labels.index = labels.index.astype(str)
        labels.index.name = "patient_id"
        labels = labels.astype("int8").sort_index()
        labels.name = target or labels.name or "label"
    if groups is not None:
        groups = pd.Series(groups.astype(str).to_numpy(), index=groups.index.astype(str), name="group")
        groups.index.name = "patient_id"
        groups = groups.sort_index()
    return Cohort(events=ev, static=static, labels=labels, target=target or (labels.name if labels is not None else None),
                  catalogue=build_catalogue(ev, static), report=report or ValidationReport(),
                  source=source, other_outcomes=other_outcomes, hour_labels=hour_labels, onsets=onsets,
                  row_times=row_times, groups=groups)
