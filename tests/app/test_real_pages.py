"""The exploration pages on the real PhysioNet 2012 sample (4,000 patients), uploaded as a user would."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.state import DATA_SOURCE, DataSource
from core.config import DataConfig

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "physionet2012"

pytestmark = [pytest.mark.real, pytest.mark.slow]


@pytest.fixture(scope="module")
def source():
    if not (DATA / "set-a.csv.gz").exists():
        pytest.skip(f"{DATA} not found: the real-data tests need the shared PhysioNet sample beside the repo")
    return DataSource("upload", (("set-a.csv.gz", (DATA / "set-a.csv.gz").read_bytes()),),
                      ("outcomes-a.csv", (DATA / "outcomes-a.csv").read_bytes()),
                      DataConfig(target="in_hospital_death"))


@pytest.fixture(autouse=True)
def _no_runs(tmp_path, monkeypatch):
    """Empty runs and server folders: the sidebar and the timeline show the current run, never a developer's."""
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path / "tmp"))


def _run(page: str, source: DataSource) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.session_state[DATA_SOURCE] = source
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_data_page_reports_the_real_sample(source):
    at = _run("app/pages/data.py", source)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Patients"] == "4,000" and metrics["Prevalence"] == "13.85%"
    assert any("outcomes or scores" in w.value for w in at.warning)   # saps/sofa/length_of_stay/survival set aside


def test_cohort_and_timeline_on_the_real_sample(source):
    _run("app/pages/cohort.py", source)
    at = _run("app/pages/timeline.py", source)
    at.text_input(key="timeline.query").input("1325").run()
    at.selectbox(key="timeline.outcome").select("positive").run()
    assert not at.exception
    box = at.selectbox(key="timeline.patient")
    assert box.options and all("1325" in o for o in box.options)
