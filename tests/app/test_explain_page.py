"""The Explain page: renders without a run (info, no error); opening it never starts work; one click explains
one model of the current run, kept with the run, so a later session on the same data shows it without a click."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.state import CURRENT_RUN, DATA_SOURCE, TRAIN_OVERRIDE, DataSource
from core.analysis.explain import saved_explanations
from tests.helpers.pages import finish_jobs, session_job_states, tiny_upload

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny upload, and a comparison (lr, gru; test preset) trained on exactly those data, not yet saved."""
    from core.training.experiment import run_experiment
    source, cohort = tiny_upload(tmp_path_factory.mktemp("explain"))
    return source, run_experiment(cohort, ["lr", "gru"], preset="test")


def _page(monkeypatch, tmp_path, source: DataSource) -> AppTest:
    """A new session on ``source``, on the Explain page (its quick training: lr and gru, test preset)."""
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path / "tmp"))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=240)
    at.session_state[DATA_SOURCE] = source
    at.session_state[TRAIN_OVERRIDE] = {"preset": "test", "models": ("lr", "gru")}     # tiny: the click stays cheap
    at.run()
    at.switch_page("app/pages/explain.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _explain(at: AppTest) -> AppTest:
    at.button(key="explain.go").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_no_run_yet_points_to_compare(data, monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path, data[0])
    assert any("Compare" in i.value for i in at.info)
    assert at.button(key="explain.train").label == "Train quick models now"
    assert session_job_states(at) == {} and not at.get("plotly_chart")


def test_train_button_trains_then_one_click_explains_one_model(data, monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path, data[0])
    at.button(key="explain.train").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(session_job_states(at)) == 1                          # the training only: nothing explained yet
    folder = Path(at.session_state[CURRENT_RUN])                     # the quick run is the current run
    assert folder.is_relative_to(tmp_path / "tmp") and saved_explanations(folder) == []      # not saved
    assert not at.get("plotly_chart")
    at.selectbox(key=f"explain.model.{folder.name}").set_value("gru")
    at.number_input(key="explain.n").set_value(10)
    _explain(at)
    assert list(session_job_states(at).values()) == ["done", "done"]     # one explanation job
    kept = saved_explanations(folder)
    assert [(r["model"], r["n_patients"], r["hour"]) for r in kept] == [("gru", 10, None)]
    # importance, the GRU's time x variable heatmap, the patient's risk + attribution
    assert len(at.get("plotly_chart")) >= 3, len(at.get("plotly_chart"))
    box = at.selectbox(key="explain.patient")
    box.select(box.options[1]).run()
    assert not at.exception, [e.value for e in at.exception]


def test_opening_starts_nothing_and_a_later_session_shows_the_saved_explanation(data, monkeypatch, tmp_path):
    from core.runs.store import save_run
    source, result = data
    folder = save_run(result, tmp_path / "runs" / "tiny-run")
    at = _page(monkeypatch, tmp_path, source)
    assert at.session_state[CURRENT_RUN] == str(folder)              # the run on this data is current
    assert session_job_states(at) == {} and not at.get("plotly_chart")        # nothing computed on opening
    model = at.selectbox(key="explain.model.tiny-run").value
    assert at.button(key="explain.go").label == "Explain this model"
    _explain(at)
    assert len(session_job_states(at)) == 1
    kept = saved_explanations(folder)
    assert [(r["model"], r["n_patients"]) for r in kept] == [(model, 50)]
    n_charts = len(at.get("plotly_chart"))
    assert n_charts >= 2                                             # importance and the first patient
    # a new session (same runs folder) on the same data: the run is current, its explanation shown at once
    later = _page(monkeypatch, tmp_path, source)
    assert later.session_state[CURRENT_RUN] == str(folder)
    assert session_job_states(later) == {}
    assert later.selectbox(key="explain.model.tiny-run").value == model
    assert len(later.get("plotly_chart")) == n_charts
    assert any("1 of the run's 2 models explained on 50 test patients" in c.value for c in later.caption), \
        [c.value for c in later.caption]
    assert saved_explanations(folder) == kept                        # read, not recomputed
