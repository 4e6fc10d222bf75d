"""Online task in the app: upload hourly data with a label column, train, see per-hour results and risks."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.state import COMPARE_SUMMARY, DATA_SOURCE, DataSource
from core.config import DataConfig
from tests.app.helpers import finish_jobs
from tests.conftest import make_online_cohort
from tests.core.test_online import _wide_csv

ROOT = Path(__file__).resolve().parents[2]


def _app(tmp_path, n_patients: int, seed: int, **state) -> AppTest:
    """The app with an uploaded hourly file (label column ``Event``) as its data, after one run."""
    _wide_csv(make_online_cohort(n_patients, seed=seed), tmp_path / "hourly.csv")
    source = DataSource("upload", (("hourly.csv", (tmp_path / "hourly.csv").read_bytes()),), None,
                        DataConfig(task="online", target="Event", horizon_hours=6))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.session_state[DATA_SOURCE] = source
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    return at


def _train(at: AppTest, models: list) -> None:
    """Train ``models`` (test preset, 40 h stays) on the Compare page."""
    at.switch_page("app/pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.multiselect(key="compare.models").set_value(models)
    at.selectbox(key="compare.preset").set_value("test")
    at.number_input(key="compare.max_hours").set_value(40)
    at.button[0].click().run()
    finish_jobs(at)


def test_online_upload_train_and_timeline(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    at = _app(tmp_path, 70, 3)
    assert not at.exception, [e.value for e in at.exception]
    _train(at, ["lr", "gru"])
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    summary = at.session_state[COMPARE_SUMMARY]
    assert summary.online and set(summary.results) == {"lr", "gru"}
    board = at.dataframe[0].value
    assert {"alarmed before onset", "false alarms / patient-day"} <= set(board.columns)
    assert any("patient-hours" in c.value for c in at.caption)
    at.switch_page("app/pages/timeline.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("risk at every hour" in c.value for c in at.caption), ([c.value for c in at.caption],
                                                                 [w.value for w in at.warning])


def test_explain_page_on_an_online_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    at = _app(tmp_path, 70, 3)
    _train(at, ["lr", "gbm", "gru"])
    at.switch_page("app/pages/explain.py").run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    at.number_input(key="explain.hour").set_value(8).run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert any("at hour 8" in c.value for c in at.caption)


def test_timeorder_page_on_online_data(tmp_path):
    from app.state import TIMEORDER_CONFIG_OVERRIDE, TIMEORDER_RESULT
    from core.config import EvaluationConfig, FeatureConfig
    from core.timeorder import TimeOrderConfig
    tiny = TimeOrderConfig(models=("lr", "gru"), horizons_hours=(12,), preset="test",
                           features=FeatureConfig(task="online", window_hours=40),
                           evaluation=EvaluationConfig(n_bootstrap=20))
    at = _app(tmp_path, 90, 4, **{TIMEORDER_CONFIG_OVERRIDE: tiny})
    at.switch_page("app/pages/timeorder.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("online task" in i.value for i in at.info)
    at.button(key="timeorder.run").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.session_state[TIMEORDER_RESULT].verdict.startswith("Online task")
