"""Online task in the app: upload hourly data with a label column, train, see per-hour results and risks."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.state import CURRENT_RUN, DATA_SOURCE, DataSource
from core.config import DataConfig
from core.runs.store import RunSummary, load_run
from tests.helpers.pages import finish_jobs, session_job_states
from tests.helpers.cohorts import make_online_cohort, wide_csv

ROOT = Path(__file__).resolve().parents[2]


def _app(tmp_path, monkeypatch, n_patients: int, seed: int, **state) -> AppTest:
    """The app with an uploaded hourly file (label column ``Event``) as its data; runs under ``tmp_path``."""
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path / "tmp"))
    wide_csv(make_online_cohort(n_patients, seed=seed), tmp_path / "hourly.csv")
    source = DataSource("upload", (("hourly.csv", (tmp_path / "hourly.csv").read_bytes()),), None,
                        DataConfig(task="online", target="Event", horizon_hours=6))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.session_state[DATA_SOURCE] = source
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    return at


def _train(at: AppTest, models: list) -> Path:
    """Train ``models`` (test preset, 40 h stays) on the Compare page; the folder of the new (current) run."""
    at.switch_page("app/pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.multiselect(key="compare.models").set_value(models)
    at.selectbox(key="compare.preset").set_value("test")
    at.number_input(key="compare.max_hours").set_value(40)
    at.button[0].click().run()
    finish_jobs(at)
    return Path(at.session_state[CURRENT_RUN])


def test_online_upload_train_and_timeline(tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch, 70, 3)
    assert not at.exception, [e.value for e in at.exception]
    folder = _train(at, ["lr", "gru"])
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    summary = RunSummary.from_run(load_run(folder))
    assert summary.online and set(summary.results) == {"lr", "gru"}
    board = at.dataframe[0].value
    assert {"alarmed before onset", "false alarms / patient-day"} <= set(board.columns)
    assert any("patient-hours" in c.value for c in at.caption)
    at.switch_page("app/pages/timeline.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("risk at every hour" in c.value for c in at.caption), ([c.value for c in at.caption],
                                                                 [w.value for w in at.warning])


def test_explain_page_on_an_online_run(tmp_path, monkeypatch):
    from core.analysis.explain import saved_explanations
    at = _app(tmp_path, monkeypatch, 70, 3)
    folder = _train(at, ["lr", "gbm", "gru"])
    started = session_job_states(at)
    at.switch_page("app/pages/explain.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert session_job_states(at) == started                         # opening the page starts nothing
    at.selectbox(key=f"explain.model.{folder.name}").set_value("gru")
    at.number_input(key="explain.n").set_value(10)
    at.number_input(key="explain.hour").set_value(8).run()
    at.button(key="explain.go").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert [(r["model"], r["n_patients"], r["hour"]) for r in saved_explanations(folder)] == [("gru", 10, 8.0)]
    assert any("at hour 8" in c.value for c in at.caption)
    assert at.select_slider(key=f"explain.at.{at.selectbox(key='explain.patient').value}").value == 8


@pytest.mark.slow  # ~6 s; the online time-order analysis: tests/core/features/test_online.py
def test_timeorder_page_on_online_data(tmp_path, monkeypatch):
    from app.state import TIMEORDER_CONFIG_OVERRIDE
    from core.analysis.timeorder import load_timeorder
    at = _app(tmp_path, monkeypatch, 90, 4,
              **{TIMEORDER_CONFIG_OVERRIDE: {"horizons_hours": (12.0,), "early_models": ("lr",)}})
    folder = _train(at, ["lr", "gru"])
    at.switch_page("app/pages/timeorder.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("No time-order analysis of the run" in i.value for i in at.info), [i.value for i in at.info]
    at.button(key="timeorder.run").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    result = load_timeorder(folder)                                  # the current (online) run's analysis
    assert result.verdict.startswith("Online task")
    assert any(result.verdict in m.value for m in [*at.success, *at.info, *at.warning])


def test_an_online_cohort_leads_with_its_hourly_prevalence(tmp_path, monkeypatch):
    """The models predict hours, so the Cohort and Data pages show the share of positive hours (stays in the help)."""
    from core.data.explore import cohort_overview
    from app.cache import load_source
    at = _app(tmp_path, monkeypatch, 60, 2)
    cohort, _ = load_source(at.session_state[DATA_SOURCE])
    ov = cohort_overview(cohort)
    assert ov["hourly_prevalence"] == pytest.approx(cohort.hour_labels["label"].mean())
    assert ov["hourly_prevalence"] < ov["prevalence"]
    at.switch_page("app/pages/cohort.py").run()
    assert not at.exception, [e.value for e in at.exception]
    metric = next(m for m in at.metric if m.label == "Positive hours")
    assert metric.value == f"{ov['hourly_prevalence']:.2%}"
    at.switch_page("app/pages/data.py").run()
    assert any(m.label == "Positive hours" for m in at.metric)
