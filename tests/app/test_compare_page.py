"""Compare page: trains on a tiny uploaded cohort with the test preset, shows results, reopens the run."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.state import COMPARE_SUMMARY, DATA_SOURCE, DataSource
from core.config import DataConfig
from tests.conftest import make_tiny_cohort
from tests.app.helpers import finish_jobs
from tests.core.test_cli_train import _write_long

ROOT = Path(__file__).resolve().parents[2]


def test_compare_page_trains_and_reopens(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    events, labels = _write_long(make_tiny_cohort(n_patients=60, seed=5), tmp_path)
    source = DataSource("upload", ((events.name, events.read_bytes()),), (labels.name, labels.read_bytes()),
                        DataConfig(target="died"))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.session_state[DATA_SOURCE] = source
    at.run()
    at.switch_page("app/pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.multiselect(key="compare.models").set_value(["lr", "gbm", "gru"])
    at.selectbox(key="compare.preset").set_value("test")
    at.button[0].click().run()          # the form's submit button: a background job
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    summary = at.session_state[COMPARE_SUMMARY]
    assert set(summary.results) == {"lr", "gbm", "gru"}
    assert any("vs" in m.value for m in at.markdown)              # paired tests in plain words
    assert len(list((tmp_path / "runs").iterdir())) == 1
    at.slider(key="compare.thr.lr").set_value(0.2).run()           # threshold slider
    assert not at.exception
    at.button(key="compare.open").click().run()                    # reopen the saved run
    assert not at.exception, [e.value for e in at.exception]
    assert set(at.session_state[COMPARE_SUMMARY].results) == {"lr", "gbm", "gru"}


def test_a_run_opened_on_other_data_says_so(tmp_path, monkeypatch):
    from core.experiment import run_experiment
    from core.runs import save_run
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    save_run(run_experiment(make_tiny_cohort(n_patients=50, seed=2), ["lr"], preset="test"),
             tmp_path / "runs" / "tiny-run")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.run()                                             # the demo data
    at.switch_page("app/pages/compare.py").run()
    at.button(key="compare.open").click().run()
    assert not at.exception, [e.value for e in at.exception]
    warned = [w.value for w in at.warning]
    assert any("trained on other data" in w for w in warned), warned
