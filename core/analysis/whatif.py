"""Temporal what-if: edit one patient's measurements and see every model's risk change.

The user edits a measurement's value at an hour, adds a measurement, removes one, or drops a variable
entirely; several :class:`Edit` s are applied in order (:func:`apply_edits`) to a copy of the patient's
events (the cohort is never changed). :func:`whatif` scores the original and the edited patient with a
saved run (its training-fitted feature builder and models, :class:`core.runs.store.Run`) and returns both risk
tables side by side:

* a stay run: the risk trajectory (:meth:`core.runs.store.Run.risk_trajectory`: the risk from the data up to
  each hour, the last point being the stay's risk), for classical and sequence models alike;
* an online run: the risk at every scored hour (data up to and including it). Both tables are scored
  from a one-patient cohort with the same scored hours (the patient's own, plus any hour an edit adds),
  so the two tables line up hour for hour.

Every model the run scores over time is causal here: an edit at hour ``h`` changes only risks at hours
``>= h`` (``tests/core/analysis/test_whatif.py`` checks it, on the fixture and on PhysioNet set A).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.data.cohort import Cohort, make_cohort
from core.exceptions import CoreError

__all__ = ["KINDS", "HOUR_TOLERANCE", "Edit", "WhatIfError", "WhatIfResult", "apply_edits", "apply_static",
           "check_edits", "whatif", "edit_variables"]

#: what an edit can do: change a measured value, add a measurement, remove one, remove a whole variable,
#: or set a static attribute (Age, ...: it holds from the first hour, so every risk may change).
KINDS = ("edit", "add", "remove", "drop_variable", "static")
#: a measurement is "at" an hour when its time is within 30 seconds of it (times from HH:MM exports are
#: fractions such as 1.1167 h that nobody types exactly).
HOUR_TOLERANCE = 1.0 / 120.0


class WhatIfError(CoreError):
    """An edit cannot be made (unknown variable, hour outside the window, no measurement there, ...)."""


def _number(value, what: str, example: str) -> float:
    if isinstance(value, bool):
        raise WhatIfError(f"Edit.{what} must be a number; got {value!r}. Example: {example}.")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise WhatIfError(f"Edit.{what} must be a number; got {value!r}. Example: {example}.") from None
    if not math.isfinite(out):
        raise WhatIfError(f"Edit.{what} must be a finite number; got {value!r}. Example: {example}.")
    return out


@dataclass(frozen=True)
class Edit:
    """One change to a patient's measurements.

    Parameters
    ----------
    kind : {"edit", "add", "remove", "drop_variable", "static"}
        ``"edit"``: set the value of the measurement(s) of ``variable`` at ``hour``; ``"add"``: a new
        measurement ``value`` of ``variable`` at ``hour``; ``"remove"``: delete the measurement(s) of
        ``variable`` at ``hour``; ``"drop_variable"``: delete every measurement of ``variable``;
        ``"static"``: set the static attribute ``variable`` (e.g. Age) to ``value``.
    variable : str
    hour : float, optional
        Hours on the events' time axis (required except for ``"drop_variable"`` and ``"static"``, where
        it is ignored).
    value : float, optional
        The new value (required for ``"edit"``, ``"add"`` and ``"static"``, ignored otherwise).
    variables : tuple of str, optional
        Context, not part of the edit: the variables that may be named (e.g. the patient's). When given,
        an unknown ``variable`` is refused with the list.
    window_hours : float, optional
        Context: the run's window; when given, an hour outside ``[0, window_hours]`` is refused.

    Raises
    ------
    WhatIfError
        An unknown kind, an empty or unknown variable, a missing / non-numeric / negative hour or one
        outside the window, a missing or non-numeric value.

    Examples
    --------
    >>> Edit("edit", "HR", 5.0, 120).describe()
    'HR at 5 h set to 120'
    >>> Edit("drop_variable", "Lactate").describe()
    'Lactate dropped (every measurement)'
    """

    kind: str
    variable: str
    hour: float | None = None
    value: float | None = None
    variables: tuple[str, ...] | None = field(default=None, compare=False, repr=False)
    window_hours: float | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise WhatIfError(f"Edit.kind must be one of {', '.join(KINDS)}; got {self.kind!r}. "
                              "Example: Edit('edit', 'HR', 5.0, 120).")
        if not isinstance(self.variable, str) or not self.variable:
            raise WhatIfError(f"Edit.variable must be a variable's name; got {self.variable!r}. "
                              "Example: Edit('edit', 'HR', 5.0, 120).")
        if self.variables is not None:
            known = tuple(sorted(map(str, self.variables)))
            object.__setattr__(self, "variables", known)
            if self.variable not in known:
                shown = ", ".join(known[:30]) + (f" and {len(known) - 30} more" if len(known) > 30 else "")
                raise WhatIfError(f"Unknown variable {self.variable!r} for this what-if. Choose one of: "
                                  f"{shown or '(none: the patient has no measurements)'}.")
        if self.kind in ("drop_variable", "static"):
            object.__setattr__(self, "hour", None)
        else:
            if self.hour is None:
                raise WhatIfError(f"A {self.kind!r} edit needs the hour of the measurement; got none. "
                                  f"Example: Edit({self.kind!r}, {self.variable!r}, 5.0"
                                  + (", 120)." if self.kind != "remove" else ")."))
            hour = _number(self.hour, "hour", f"Edit({self.kind!r}, {self.variable!r}, 5.0, ...)")
            if hour < 0:
                raise WhatIfError(f"Edit.hour must be 0 or more (hours since the first record); got {hour:g}.")
            if self.window_hours is not None and hour > float(self.window_hours) + 1e-9:
                raise WhatIfError(f"Hour {hour:g} is outside the run's window (0 to {float(self.window_hours):g} h): "
                                  "the run never sees data after it. Pick an hour within the window.")
            object.__setattr__(self, "hour", hour)
        if self.kind in ("edit", "add", "static"):
            example = (f"Edit('static', {self.variable!r}, value=70)" if self.kind == "static" else
                       f"Edit({self.kind!r}, {self.variable!r}, {self.hour:g}, 120)")
            if self.value is None:
                raise WhatIfError(f"A {self.kind!r} edit needs the new value; got none. Example: {example}.")
            object.__setattr__(self, "value", _number(self.value, "value", example))
        else:
            object.__setattr__(self, "value", None)

    def describe(self) -> str:
        """The edit in words (names as given: escape them where they are shown as HTML)."""
        if self.kind == "edit":
            return f"{self.variable} at {self.hour:g} h set to {self.value:g}"
        if self.kind == "add":
            return f"{self.variable} {self.value:g} added at {self.hour:g} h"
        if self.kind == "remove":
            return f"{self.variable} at {self.hour:g} h removed"
        if self.kind == "static":
            return f"{self.variable} (static) set to {self.value:g}"
        return f"{self.variable} dropped (every measurement)"


def edit_variables(events: pd.DataFrame, run=None) -> list[str]:
    """The variables an edit may name: the patient's, plus (to add a measurement) the run's time series and
    static attributes."""
    names = set(events["variable"].astype(str).unique())
    if run is not None:
        names |= set(map(str, run.builder.variables_)) | set(map(str, run.builder.static_columns_))
    return sorted(names)


def _matching(ev: pd.DataFrame, edit: Edit) -> np.ndarray:
    """Rows of ``edit.variable`` measured at ``edit.hour`` (within :data:`HOUR_TOLERANCE`)."""
    same = ev["variable"].to_numpy() == edit.variable
    near = np.abs(ev["time_hours"].to_numpy(dtype=float) - edit.hour) <= HOUR_TOLERANCE
    hits = same & near
    if not hits.any():
        times = ev.loc[same, "time_hours"].to_numpy(dtype=float)
        if not len(times):
            raise WhatIfError(f"The patient has no {edit.variable} measurement (left), so there is nothing to "
                              f"{edit.kind} at {edit.hour:g} h. Use 'add' to add one.")
        shown = ", ".join(f"{t:.2f}" for t in times[:12]) + (f" and {len(times) - 12} more" if len(times) > 12 else "")
        raise WhatIfError(f"No {edit.variable} measurement at {edit.hour:g} h (within 30 s). Its measurements are at "
                          f"{shown} h: pick one of those hours, or use 'add' for a new measurement.")
    return hits


def apply_edits(events: pd.DataFrame, edits, patient_id: str | None = None) -> pd.DataFrame:
    """A copy of one patient's ``events`` with ``edits`` applied in order (the input is never changed).

    Parameters
    ----------
    events : DataFrame
        Columns ``patient_id, time_hours, variable, value`` (one patient's, e.g. ``Cohort.patient_events``).
    edits : sequence of Edit
    patient_id : str, optional
        The id of added rows when ``events`` is empty (default: the id in ``events``).

    Returns
    -------
    DataFrame with the same columns (``patient_id`` and ``variable`` as str), sorted by time (stable).

    Raises
    ------
    WhatIfError
        An edit or removal names a measurement that is not there (the message lists the variable's hours),
        a dropped variable has no measurement.
    """
    ev = pd.DataFrame({"patient_id": events["patient_id"].astype(str).to_numpy(dtype=object),
                       "time_hours": events["time_hours"].to_numpy(dtype=float),
                       "variable": events["variable"].astype(str).to_numpy(dtype=object),
                       "value": events["value"].to_numpy(dtype=float)})
    pid = str(patient_id) if patient_id is not None else (str(ev["patient_id"].iat[0]) if len(ev) else "patient")
    for edit in edits:
        if not isinstance(edit, Edit):
            raise WhatIfError(f"Each edit must be a core.analysis.whatif.Edit; got {type(edit).__name__}. "
                              "Example: Edit('edit', 'HR', 5.0, 120).")
        if edit.kind == "static":          # not an event: see apply_static
            continue
        if edit.kind == "drop_variable":
            same = ev["variable"].to_numpy() == edit.variable
            if not same.any():
                have = ", ".join(sorted(ev["variable"].unique())) or "none"
                raise WhatIfError(f"The patient has no {edit.variable} measurement to drop. Its variables: {have}.")
            ev = ev[~same]
        elif edit.kind == "add":
            row = pd.DataFrame({"patient_id": [pid], "time_hours": [edit.hour], "variable": [edit.variable],
                                "value": [edit.value]})
            ev = pd.concat([ev, row], ignore_index=True)
        elif edit.kind == "edit":
            hits = _matching(ev, edit)
            ev = ev.copy()
            ev.loc[hits, "value"] = edit.value
        else:
            ev = ev[~_matching(ev, edit)]
    return ev.sort_values("time_hours", kind="stable").reset_index(drop=True)


def apply_static(static: pd.DataFrame, edits, patient_id: str, columns=()) -> pd.DataFrame:
    """A copy of one patient's static row with the ``"static"`` edits applied (other kinds are ignored).

    Parameters
    ----------
    static : DataFrame
        The patient's row of ``Cohort.static`` (or empty: a row of NaN is made).
    edits : sequence of Edit
    patient_id : str
    columns : sequence of str
        The static attributes the run reads (a patient without a row gets these columns).

    Raises
    ------
    WhatIfError
        An edit names an attribute that is neither in ``static`` nor in ``columns``.
    """
    out = static.iloc[:1].copy() if len(static) else pd.DataFrame(
        np.nan, index=pd.Index([str(patient_id)], name="patient_id"), columns=list(static.columns) or list(columns))
    for edit in edits:
        if edit.kind != "static":
            continue
        known = list(out.columns) + [c for c in columns if c not in out.columns]
        if edit.variable not in known:
            raise WhatIfError(f"{edit.variable!r} is not a static attribute of this patient or run. Static attributes: "
                              f"{', '.join(map(str, known)) or 'none'}.")
        out[edit.variable] = float(edit.value)
    return out


@dataclass(frozen=True)
class WhatIfResult:
    """The risks of one patient before and after a list of edits.

    Attributes
    ----------
    patient_id : str
    edits : tuple of Edit
    online : bool
        Whether the run predicts every hour (else the tables are a stay run's risk trajectories).
    original, edited : DataFrame
        ``time_hours`` + one column per model (as :meth:`core.runs.store.Run.risk_table`).
    first_hour : float or None
        The earliest hour an edit touches (a dropped variable: its first measurement); risks before it
        are the original ones. ``None`` without edits.
    """

    patient_id: str
    edits: tuple
    online: bool
    original: pd.DataFrame
    edited: pd.DataFrame
    first_hour: float | None

    def long_table(self) -> pd.DataFrame:
        """Every hour of both tables, one row per hour and model: ``time_hours, model, original risk,
        what-if risk, change`` (NaN where only one version has the hour, e.g. one an edit added)."""
        rows = []
        for name in [c for c in self.original.columns if c != "time_hours"]:
            both = self.original[["time_hours", name]].merge(self.edited[["time_hours", name]], on="time_hours",
                                                             how="outer", suffixes=(" original", " what-if"))
            rows.append(pd.DataFrame({"time_hours": both["time_hours"], "model": name,
                                      "original risk": both[f"{name} original"],
                                      "what-if risk": both[f"{name} what-if"]}))
        table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
            columns=["time_hours", "model", "original risk", "what-if risk"])
        table["change"] = table["what-if risk"] - table["original risk"]
        return table

    def summary(self, labels: bool = False) -> pd.DataFrame:
        """One row per model: ``model`` (its registry name; in words, e.g. "logistic regression", when
        ``labels``), ``original risk``, ``what-if risk`` (the last point: the stay's
        risk, or online the last scored hour's), ``change``, and the ``largest change`` over the hours both
        tables have, with its hour (``at hour``, NaN when nothing changed)."""
        both = self.original.merge(self.edited, on="time_hours", how="inner", suffixes=("", " (what-if)"))
        rows = []
        for name in [c for c in self.original.columns if c != "time_hours"]:
            before = float(self.original[name].iloc[-1]) if len(self.original) else np.nan
            after = float(self.edited[name].iloc[-1]) if len(self.edited) and name in self.edited else np.nan
            diff = (both[f"{name} (what-if)"] - both[name]).to_numpy() if f"{name} (what-if)" in both else []
            big = int(np.argmax(np.abs(diff))) if len(diff) and np.nanmax(np.abs(diff)) > 0 else None
            rows.append({"model": _label(name) if labels else name, "original risk": before, "what-if risk": after, "change": after - before,
                         "largest change": float(diff[big]) if big is not None else 0.0,
                         "at hour": float(both["time_hours"].iat[big]) if big is not None else np.nan})
        return pd.DataFrame(rows, columns=["model", "original risk", "what-if risk", "change", "largest change",
                                           "at hour"])


def _label(name: str) -> str:
    from core.models import registry
    try:
        return registry.get(str(name)).label
    except ValueError:
        return str(name)


def _first_hour(events: pd.DataFrame, edits) -> float | None:
    hours = []
    for e in edits:
        if e.kind == "static":
            hours.append(0.0)              # a static attribute holds from the first hour
        elif e.kind == "drop_variable":
            t = events.loc[events["variable"].astype(str) == e.variable, "time_hours"]
            if len(t):
                hours.append(float(t.min()))
        else:
            hours.append(float(e.hour) - (HOUR_TOLERANCE if e.kind in ("edit", "remove") else 0.0))
    return min(hours) if hours else None


def _online_table(run, events: pd.DataFrame, static: pd.DataFrame | None, row_times: pd.DataFrame) -> pd.DataFrame:
    one = make_cohort(events, static, row_times=row_times)
    scores = run.score(one)
    table = scores.pivot_table(index="time", columns="model", values="risk", sort=True)
    table = table[[m for m in run.models if m in table.columns]]
    table.columns.name = None
    return table.rename_axis("time_hours").reset_index()


def _scored_rows(cohort: Cohort, patient_id: str, run, extra_hours) -> pd.DataFrame:
    """The rows whose hours an online run scores for this patient, plus ``extra_hours`` (added
    measurements): the same for the original and the edited patient, so both tables have the same hours.

    The scored hours are the patient's labelled hours when the cohort has hour labels, else its input rows
    (:meth:`core.features.FeatureBuilder._units`); every row time in those steps is kept, so each hour's time
    is the latest row of its step, as when the whole cohort is scored.
    """
    cfg = run.builder.config
    ev = cohort.patient_events(patient_id)
    frames = [f[f["patient_id"].astype(str) == patient_id]["time_hours"].to_numpy(dtype=float)
              for f in (cohort.hour_labels, cohort.row_times) if f is not None]
    base = frames[0] if frames else ev["time_hours"].to_numpy(dtype=float)
    step, inside = cfg.steps(base)
    keys = set(step[inside].tolist())
    extra = np.asarray(list(extra_hours), dtype=float)
    ex_step, ex_in = cfg.steps(extra)
    keys |= set(ex_step[ex_in].tolist())
    times = np.concatenate(frames + [ev["time_hours"].to_numpy(dtype=float), extra])
    s, ins = cfg.steps(times)
    keep = ins & np.isin(s, list(keys))
    return pd.DataFrame({"patient_id": patient_id, "time_hours": np.unique(times[keep])})


def check_edits(run, cohort: Cohort, patient_id: str, edits) -> None:
    """Raise the :class:`WhatIfError` :func:`whatif` would raise for ``edits`` on this patient, without scoring
    (cheap: the page checks each new edit before stacking it)."""
    pid = str(patient_id)
    window = float(run.builder.config.window_hours)
    for e in edits:
        if e.hour is not None and e.hour > window + 1e-9:
            raise WhatIfError(f"Hour {e.hour:g} is outside the run's window (0 to {window:g} h): the run never sees "
                              "data after it. Pick an hour within the window.")
    apply_edits(cohort.patient_events(pid), edits, patient_id=pid)
    apply_static(cohort.static.loc[cohort.static.index.intersection([pid])], edits, pid, run.builder.static_columns_)


def whatif(run, cohort: Cohort, patient_id: str, edits) -> WhatIfResult:
    """Score ``patient_id`` before and after ``edits`` with every model of ``run``.

    Parameters
    ----------
    run : core.runs.store.Run
        A reopened run (its fitted feature builder builds the features of both versions).
    cohort : Cohort
        The data the patient is in (never changed).
    patient_id : str
    edits : sequence of Edit
        Applied in order; each is checked against the patient (what :func:`apply_edits` raises) and the
        run's window.

    Returns
    -------
    WhatIfResult

    Raises
    ------
    WhatIfError
        An edit cannot be made on this patient, or names an hour outside the run's window.
    core.exceptions.RunError
        The run cannot score the (edited) patient, e.g. no variable of the run is left.
    """
    pid = str(patient_id)
    edits = tuple(edits)
    events = cohort.patient_events(pid)[["patient_id", "time_hours", "variable", "value"]]
    if not len(events) and pid not in cohort.static.index:
        raise WhatIfError(f"Patient {pid!r} is not in the data. Pick one of the patients listed on the page.")
    check_edits(run, cohort, pid, edits)
    edited = apply_edits(events, edits, patient_id=pid)
    static = cohort.static.loc[cohort.static.index.intersection([pid])]
    static_after = apply_static(static, edits, pid, run.builder.static_columns_) \
        if any(e.kind == "static" for e in edits) else static
    if run.online:
        rows = _scored_rows(cohort, pid, run, [e.hour for e in edits if e.kind == "add"])
        original = _online_table(run, events, static, rows)
        after = _online_table(run, edited, static_after, rows)
    else:
        original = run.risk_trajectory(events, static)
        after = run.risk_trajectory(edited, static_after)
    return WhatIfResult(pid, edits, bool(run.online), original, after, _first_hour(events, edits))
