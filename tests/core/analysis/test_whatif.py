"""core.analysis.whatif: typed edits, edits applied to a copy, and causal what-if risks (fixture runs and set A)."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from core.training.experiment import run_experiment
from core.runs.store import load_run, save_run
from core.analysis.whatif import Edit, WhatIfError, apply_edits, whatif
from tests.helpers.cohorts import make_online_cohort, make_tiny_cohort
from tests.helpers.paths import ROOT

SET_A = ROOT.parent / "shared/data/physionet2012"
RECURRENT = ("rnn", "lstm", "gru", "grud")


@pytest.fixture(scope="module")
def stay(tmp_path_factory):
    cohort = make_tiny_cohort(n_patients=60, seed=1)
    res = run_experiment(cohort, ["lr", "gbm", *RECURRENT], preset="test")
    return cohort, load_run(save_run(res, tmp_path_factory.mktemp("runs") / "stay"))


@pytest.fixture(scope="module")
def online(tmp_path_factory):
    cohort = make_online_cohort(n_patients=60, seed=2)
    res = run_experiment(cohort, ["lr", "gbm", *RECURRENT], preset="test")
    return cohort, load_run(save_run(res, tmp_path_factory.mktemp("runs") / "online"))


def _before(table: pd.DataFrame, hour: float) -> pd.DataFrame:
    return table[table["time_hours"] < hour].set_index("time_hours").sort_index(axis=1)


def assert_causal(result) -> None:
    """Every risk at an hour before the earliest edited hour equals the original one (to 1e-12)."""
    before, after = _before(result.original, result.first_hour), _before(result.edited, result.first_hour)
    assert len(before), "no hour before the edit: the check would be empty"
    assert list(before.index) == list(after.index)
    np.testing.assert_allclose(after.to_numpy(), before.to_numpy(), rtol=0, atol=1e-12)


def _mid(events: pd.DataFrame, variable: str) -> float:
    t = events.loc[events["variable"].astype(str) == variable, "time_hours"].to_numpy()
    return float(t[len(t) // 2])


# -- the Edit type ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="change", variable="HR", hour=1.0, value=1.0), "Edit.kind must be one of edit, add"),
    (dict(kind="edit", variable="", hour=1.0, value=1.0), "Edit.variable must be a variable's name"),
    (dict(kind="edit", variable="Glucose", hour=1.0, value=1.0, variables=("HR", "Temp")),
     r"Unknown variable 'Glucose'.*Choose one of: HR, Temp"),
    (dict(kind="add", variable="HR", hour=60.0, value=1.0, window_hours=48.0),
     r"Hour 60 is outside the run's window \(0 to 48 h\)"),
    (dict(kind="add", variable="HR", hour=-1.0, value=1.0), "Edit.hour must be 0 or more"),
    (dict(kind="add", variable="HR", hour="soon", value=1.0), "Edit.hour must be a number; got 'soon'"),
    (dict(kind="edit", variable="HR", hour=1.0, value="high"), "Edit.value must be a number; got 'high'"),
    (dict(kind="edit", variable="HR", hour=1.0, value=float("nan")), "Edit.value must be a finite number"),
    (dict(kind="add", variable="HR", hour=1.0), "needs the new value"),
    (dict(kind="remove", variable="HR"), "needs the hour of the measurement"),
])
def test_bad_edits_say_what_to_fix(kwargs, message):
    with pytest.raises(WhatIfError, match=message):
        Edit(**kwargs)


def test_edits_are_typed_and_described():
    e = Edit("edit", "HR", "5", "120")
    assert (e.hour, e.value) == (5.0, 120.0)
    assert Edit("drop_variable", "HR", 3.0, 1.0) == Edit("drop_variable", "HR")     # hour and value ignored
    assert e == Edit("edit", "HR", 5.0, 120.0, variables=("HR",), window_hours=48)  # context is not the edit
    assert [x.describe() for x in (e, Edit("add", "HR", 1.5, 90), Edit("remove", "HR", 2.0))] == [
        "HR at 5 h set to 120", "HR 90 added at 1.5 h", "HR at 2 h removed"]


def test_apply_edits_works_on_a_copy_in_order():
    ev = pd.DataFrame({"patient_id": ["a"] * 4, "time_hours": [0.5, 1.116667, 2.0, 3.0],
                       "variable": ["HR", "HR", "MAP", "HR"], "value": [80.0, 90.0, 70.0, 100.0]})
    kept = ev.copy()
    out = apply_edits(ev, [Edit("edit", "HR", 1.1167, 150),          # within 30 s of 1.116667
                           Edit("add", "Lactate", 0.25, 2.5), Edit("remove", "HR", 3.0)])
    pd.testing.assert_frame_equal(ev, kept)                          # the input is never changed
    assert list(out["time_hours"]) == [0.25, 0.5, 1.116667, 2.0]
    assert list(out["value"]) == [2.5, 80.0, 150.0, 70.0]
    assert list(out["variable"]) == ["Lactate", "HR", "HR", "MAP"] and set(out["patient_id"]) == {"a"}
    assert list(apply_edits(ev, [Edit("drop_variable", "HR")])["variable"]) == ["MAP"]
    with pytest.raises(WhatIfError, match=r"No HR measurement at 1.5 h.*at 0.50, 1.12, 3.00 h"):
        apply_edits(ev, [Edit("edit", "HR", 1.5, 1)])
    with pytest.raises(WhatIfError, match="no Temp measurement to drop. Its variables: HR, MAP"):
        apply_edits(ev, [Edit("drop_variable", "Temp")])
    with pytest.raises(WhatIfError, match="no HR measurement \\(left\\)"):    # stacked: dropped, then edited
        apply_edits(ev, [Edit("drop_variable", "HR"), Edit("remove", "HR", 0.5)])


# -- causality, no-op and drop == remove-all --------------------------------------------------------
def _edit_lists(events: pd.DataFrame) -> list[list[Edit]]:
    hr = _mid(events, "HR")
    hr_value = float(events.loc[np.isclose(events["time_hours"], hr) & (events["variable"] == "HR"), "value"].iat[0])
    lac = events.loc[events["variable"].astype(str) == "Lactate", "time_hours"]
    out = [[Edit("edit", "HR", hr, hr_value + 80)], [Edit("add", "HR", hr + 0.2, 250.0)], [Edit("remove", "HR", hr)],
           [Edit("add", "Lactate", hr, 9.0), Edit("edit", "HR", hr, 30.0)]]
    if len(lac) and float(lac.min()) > 1.0:
        out.append([Edit("drop_variable", "Lactate")])
    return out


@pytest.mark.parametrize("which", ["stay", "online"])
def test_edits_change_only_the_risks_at_or_after_the_edited_hour(which, stay, online):
    cohort, run = stay if which == "stay" else online
    changed = set()
    for pid in cohort.patient_ids[:6]:
        ev = cohort.patient_events(pid)
        for edits in _edit_lists(ev):
            res = whatif(run, cohort, pid, edits)
            assert_causal(res)
            later = res.original.merge(res.edited, on="time_hours", suffixes=("", "_w"))
            changed |= {m for m in run.models if not np.allclose(later[m], later[f"{m}_w"], rtol=0, atol=1e-9)}
    # the check is not vacuous: the edits do move every model's risk somewhere after the edited hour
    assert changed == set(run.models), set(run.models) - changed


def test_the_causality_check_can_fail(stay):
    """A model that read the future (here: the edited trajectory shifted one point earlier) is caught."""
    cohort, run = stay
    pid = cohort.patient_ids[0]
    ev = cohort.patient_events(pid)
    res = whatif(run, cohort, pid, [Edit("edit", "HR", _mid(ev, "HR"), 250.0)])
    leaked = res.edited.copy()
    leaked[list(run.models)] = leaked[list(run.models)].shift(-1).ffill()
    with pytest.raises(AssertionError):
        assert_causal(type(res)(res.patient_id, res.edits, res.online, res.original, leaked, res.first_hour))


@pytest.mark.parametrize("which", ["stay", "online"])
def test_an_edit_to_the_same_value_changes_nothing_and_the_original_is_the_pages_risk(which, stay, online):
    cohort, run = stay if which == "stay" else online
    pid = cohort.patient_ids[3]
    ev = cohort.patient_events(pid)
    hr = _mid(ev, "HR")
    same = float(ev.loc[(ev["time_hours"] == hr) & (ev["variable"] == "HR"), "value"].iat[0])
    res = whatif(run, cohort, pid, [Edit("edit", "HR", hr, same)])
    pd.testing.assert_frame_equal(res.edited, res.original)
    page = run.risk_table(cohort, pid).rename_axis(columns=None)      # online: columns named "model"
    pd.testing.assert_frame_equal(res.original, page[res.original.columns], check_exact=False, rtol=0, atol=1e-12)
    summary = res.summary()
    assert list(summary["model"]) == list(run.models)
    assert (summary["change"] == 0).all() and summary["at hour"].isna().all()


@pytest.mark.parametrize("which", ["stay", "online"])
def test_removing_every_measurement_of_a_variable_equals_dropping_it(which, stay, online):
    cohort, run = stay if which == "stay" else online
    pid = cohort.patient_ids[1]
    ev = cohort.patient_events(pid)
    times = ev.loc[ev["variable"].astype(str) == "HR", "time_hours"]
    removed = whatif(run, cohort, pid, [Edit("remove", "HR", float(t)) for t in times])
    dropped = whatif(run, cohort, pid, [Edit("drop_variable", "HR")])
    pd.testing.assert_frame_equal(removed.edited, dropped.edited)
    assert not removed.edited.equals(removed.original)


def test_whatif_never_changes_the_cohort_and_refuses_hours_outside_the_window(stay):
    cohort, run = stay
    pid = cohort.patient_ids[0]
    events, fingerprint = cohort.events.copy(), cohort.fingerprint()
    res = whatif(run, cohort, pid, [Edit("drop_variable", "HR"), Edit("add", "HR", 1.0, 200.0)])
    pd.testing.assert_frame_equal(cohort.events, events)
    assert cohort.fingerprint() == fingerprint and res.first_hour is not None
    with pytest.raises(WhatIfError, match=r"Hour 60 is outside the run.s window \(0 to 48 h\)"):
        whatif(run, cohort, pid, [Edit("add", "HR", 60.0, 200.0)])


def test_an_edited_risk_moves_by_hand(stay):
    """Dropping HR at the first hour: the logistic regression's last-point risk is the one of the same
    patient scored with no HR at all (a cohort built by hand)."""
    from core.data.cohort import make_cohort
    cohort, run = stay
    pid = cohort.patient_ids[2]
    ev = cohort.patient_events(pid)
    res = whatif(run, cohort, pid, [Edit("drop_variable", "HR")])
    by_hand = make_cohort(ev[ev["variable"] != "HR"], cohort.static.loc[[pid]])
    stay_risk = run.score(by_hand).set_index("model")["risk"]
    summary = res.summary().set_index("model")
    for m in run.models:
        assert abs(summary.loc[m, "what-if risk"] - stay_risk[m]) < 1e-9, m


# -- set A ------------------------------------------------------------------------------------------
@pytest.mark.slow  # real data
@pytest.mark.real
def test_set_a_edits_are_causal(tmp_path):
    if not (SET_A / "set-a.csv.gz").exists():
        pytest.skip("../shared/data/physionet2012 not found: the set A what-if test needs the shared sample")
    from core.config import DataConfig
    from core.data.ingest import validate_data
    cohort, _ = validate_data(SET_A / "set-a.csv.gz", SET_A / "outcomes-a.csv",
                              config=DataConfig(target="in_hospital_death"))
    small = cohort.subset(cohort.patient_ids[:300])
    run = load_run(save_run(run_experiment(small, ["lr", "gbm", "gru", "grud"], preset="test"), tmp_path / "a"))
    changed = set()
    for pid in small.patient_ids[:5]:
        ev = small.patient_events(pid)
        ev = ev[ev["time_hours"] <= run.builder.config.window_hours]
        var = ev["variable"].astype(str).value_counts().index[0]          # the most measured one (HR, mostly)
        hour = _mid(ev, var)
        for edits in ([Edit("edit", var, hour, float(ev["value"].max()) * 3)], [Edit("remove", var, hour)],
                      [Edit("add", var, hour + 0.25, 0.0)]):
            res = whatif(run, small, pid, edits)
            assert_causal(res)
            later = res.original.merge(res.edited, on="time_hours", suffixes=("", "_w"))
            changed |= {m for m in run.models if not np.allclose(later[m], later[f"{m}_w"], rtol=0, atol=1e-9)}
    assert changed, "no edit changed any risk on set A"


def test_the_whatif_figure_draws_original_dashed_and_escapes_names():
    from core.plots import whatif_figure
    from core.analysis.whatif import WhatIfResult
    table = pd.DataFrame({"time_hours": [1.0, 2.0], "lr": [0.1, 0.2], "<img src=x>": [0.3, 0.4]})
    res = WhatIfResult("<b>p1</b>", (Edit("add", "HR", 1.5, 90),), False, table, table.assign(lr=[0.1, 0.5]), 1.5)
    fig = whatif_figure(res)
    lines = [(t.name, t.line.dash, t.showlegend is not False) for t in fig.data]
    # one legend entry per model (the what-if line, solid); the original (dashed) toggles with it
    assert lines == [("logistic regression", "dash", False), ("logistic regression", None, True),
                     ("&lt;img src=x&gt;", "dash", False), ("&lt;img src=x&gt;", None, True)]
    assert fig.data[0].legendgroup == fig.data[1].legendgroup
    assert fig.data[0].line.color == fig.data[1].line.color
    spec = fig.to_json()
    assert "<img" not in spec and "<b>p1" not in spec and "&lt;b&gt;p1" in spec


@pytest.mark.parametrize("which", ["stay", "online"])
def test_a_static_attribute_can_be_edited(which, stay, online):
    """Age holds from the first hour: the logistic regression moves at every hour; the same Age moves nothing."""
    cohort, run = stay if which == "stay" else online
    pid = next(p for p in cohort.patient_ids if np.isfinite(cohort.static.loc[p, "Age"]))
    age = float(cohort.static.loc[pid, "Age"])
    assert Edit("static", "Age", 3.0, 90).describe() == "Age (static) set to 90"
    res = whatif(run, cohort, pid, [Edit("static", "Age", value=age + 40)])
    assert res.first_hour == 0.0
    assert (np.abs(res.edited["lr"] - res.original["lr"]) > 1e-9).all()
    same = whatif(run, cohort, pid, [Edit("static", "Age", value=age)])
    pd.testing.assert_frame_equal(same.edited, same.original)
    assert cohort.static.loc[pid, "Age"] == age                               # the cohort is not changed
    with pytest.raises(WhatIfError, match="'Height' is not a static attribute.*Static attributes: Age"):
        whatif(run, cohort, pid, [Edit("static", "Height", value=170)])
    with pytest.raises(WhatIfError, match="A 'static' edit needs the new value"):
        Edit("static", "Age")
