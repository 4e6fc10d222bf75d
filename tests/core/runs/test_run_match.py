"""A run knows its data: other data are named plainly (missing and new variables), and refused when
none of the run's variables is there."""
from __future__ import annotations

import pytest

from core.cli import main
from core.data.cohort import make_cohort
from core.exceptions import RunError
from core.training.experiment import run_experiment
from core.runs.store import load_run, match_run_folder, save_run
from tests.helpers.cohorts import make_tiny_cohort, write_long


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cohort = make_tiny_cohort(50, seed=11)
    folder = save_run(run_experiment(cohort, ["lr", "gru"], preset="test"), tmp_path_factory.mktemp("m") / "run")
    return cohort, folder


def _without(cohort, variable):
    ev = cohort.events[cohort.events["variable"].astype(str) != variable].copy()
    ev["variable"] = ev["variable"].astype(str)
    return make_cohort(ev, cohort.static, cohort.labels, target="died")


def test_the_run_recognises_its_own_data(saved):
    cohort, folder = saved
    m = match_run_folder(folder, cohort)
    assert m.same_data and m.usable and m.sentence() == ""


def test_other_data_are_named_with_missing_variables_and_patients_affected(saved):
    cohort, folder = saved
    other = _without(cohort, "Lactate")
    m = load_run(folder).match(other)
    assert not m.same_data and m.missing == ["Lactate"] and m.patients_missing_share == 1.0
    text = m.sentence()
    assert "trained on other data" in text and "Lactate" in text and "100% of these patients" in text
    assert len(load_run(folder).score(other)) > 0             # allowed, with the warning


def test_data_without_any_of_the_runs_variables_is_refused(saved, tmp_path, capsys):
    cohort, folder = saved
    ev = cohort.events.copy()
    ev["variable"] = ev["variable"].astype(str).map({"HR": "X1", "Temp": "X2", "Lactate": "X3"})
    alien = make_cohort(ev, cohort.static.rename(columns={"Age": "Years"}), cohort.labels, target="died")
    m = load_run(folder).match(alien)
    assert not m.usable and "None of its" in m.sentence()
    with pytest.raises(RunError, match="cannot score"):
        load_run(folder).score(alien)
    events = tmp_path / "alien.csv"
    ev.rename(columns={"time_hours": "time"})[["patient_id", "time", "variable", "value"]].to_csv(events, index=False)
    assert main(["predict", str(folder), str(events), "--out", str(tmp_path / "p.csv")]) == 2
    assert "cannot score" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def test_predict_on_other_data_warns_and_scores(saved, tmp_path, capsys):
    cohort, folder = saved
    events, _ = write_long(_without(cohort, "Lactate"), tmp_path, labels=False)
    # Lactate carries much of these models' importance: refused, naming it, unless the user insists
    assert main(["predict", str(folder), str(events), "--out", str(tmp_path / "p.csv")]) == 2
    assert "Lactate (" in capsys.readouterr().err
    assert main(["predict", str(folder), str(events), "--out", str(tmp_path / "p.csv"), "--allow-missing"]) == 0
    err = capsys.readouterr().err
    assert "warning: This run was trained on other data" in err and "Lactate" in err
