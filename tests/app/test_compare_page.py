"""Compare page: trains on a tiny uploaded cohort with the test preset, shows results, reopens the run."""
import re
from pathlib import Path

import pytest
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
    at.checkbox(key="compare.save").check()
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
    folder = at.session_state[COMPARE_SUMMARY].folder
    assert folder.stat().st_mode & 0o777 == 0o700 and (folder / "metrics.json").stat().st_mode & 0o777 == 0o600
    assert at.button(key="compare.delete").disabled                # asks first
    at.checkbox(key=f"compare.delete_sure.{folder}").check().run()
    at.button(key="compare.delete").click().run()                  # deleted, with its files
    assert not at.exception, [e.value for e in at.exception]
    assert not folder.exists() and COMPARE_SUMMARY not in at.session_state


def test_an_unsaved_run_is_kept_in_the_temporary_folder_until_saved(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path / "tmp"))
    events, labels = _write_long(make_tiny_cohort(n_patients=60, seed=8), tmp_path)
    source = DataSource("upload", ((events.name, events.read_bytes()),), (labels.name, labels.read_bytes()),
                        DataConfig(target="died"))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.session_state[DATA_SOURCE] = source
    at.run()
    at.switch_page("app/pages/compare.py").run()
    at.multiselect(key="compare.models").set_value(["lr"])
    at.selectbox(key="compare.preset").set_value("test")
    at.button[0].click().run()
    finish_jobs(at)
    folder = at.session_state[COMPARE_SUMMARY].folder
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())   # nothing in the runs folder
    assert folder.is_relative_to(tmp_path / "tmp") and (folder / "manifest.json").exists()
    at.button(key="compare.save_now").click().run()
    assert not at.exception, [e.value for e in at.exception]
    saved = at.session_state[COMPARE_SUMMARY].folder
    assert saved.parent == tmp_path / "runs" and (saved / "manifest.json").exists() and not folder.exists()


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


def test_an_identical_training_is_reused_and_the_timeline_shows_the_risk_trajectory(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    events, labels = _write_long(make_tiny_cohort(n_patients=60, seed=7), tmp_path)
    source = DataSource("upload", ((events.name, events.read_bytes()),), (labels.name, labels.read_bytes()),
                        DataConfig(target="died"))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.session_state[DATA_SOURCE] = source
    at.run()
    at.switch_page("app/pages/compare.py").run()
    at.multiselect(key="compare.models").set_value(["lr", "gru"])
    at.selectbox(key="compare.preset").set_value("test")
    at.checkbox(key="compare.save").check()
    at.button[0].click().run()
    finish_jobs(at)
    first = at.session_state[COMPARE_SUMMARY]
    assert not first.reused
    at.button[0].click().run()                                     # the same request again
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    again = at.session_state[COMPARE_SUMMARY]
    assert again.reused and again.folder == first.folder
    assert any("Nothing was recomputed" in i.value for i in at.info), [i.value for i in at.info]
    assert len(list((tmp_path / "runs").iterdir())) == 1            # no duplicate run
    at.switch_page("app/pages/timeline.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("from the data up to each hour" in c.value for c in at.caption), [c.value for c in at.caption]
    fig = at.get("plotly_chart")[0].proto.spec
    assert '"name":"GRU"' in fig and '"name":"logistic regression"' in fig


def test_the_timeline_marks_kept_implausible_values_and_uses_edited_code_meanings(tmp_path):
    import pandas as pd

    from app.state import CODE_TABLE
    rows = "".join(f"p{i},{h},HR,{70 + i}\n" for i in range(30) for h in range(3))
    events = ("patient_id,time,variable,value\n" + "".join(f"p{i},0,Gender,{i % 2}\n" for i in range(30)) + rows
              + "p0,1.5,Temp,-17.8\n").encode()
    labels = b"patient_id,died\n" + b"".join(f"p{i},{i % 2}\n".encode() for i in range(30))
    source = DataSource("upload", (("e.csv", events),), ("l.csv", labels),
                        DataConfig(target="died", keep_implausible=True))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.session_state[DATA_SOURCE] = source
    at.session_state[CODE_TABLE] = pd.DataFrame({"variable": ["Gender"], "code": [0.0], "meaning": ["woman (site A)"]})
    at.run()
    at.switch_page("app/pages/timeline.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="timeline.patient").value == "p0"
    at.multiselect(key="timeline.vars.p0").set_value(["HR", "Temp"]).run()
    assert any(m.value == "woman (site A)" for m in at.metric), [m.value for m in at.metric]
    spec = at.get("plotly_chart")[0].proto.spec
    assert "outside the plausible range" in spec


def test_decision_curves_and_the_report_download_of_the_open_run(tmp_path, monkeypatch):
    from core.experiment import run_experiment
    from core.report import build_report
    from core.runs import load_run, save_run
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    cohort = make_tiny_cohort(n_patients=60, seed=4)
    save_run(run_experiment(cohort, ["lr", "gbm"], preset="test"), tmp_path / "runs" / "dca-run")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.run()
    at.switch_page("app/pages/compare.py").run()
    at.button(key="compare.open").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(t.label == "Decision curves" for t in at.tabs), [t.label for t in at.tabs]
    assert any("net benefit" in c.value and "treat all" in c.value for c in at.caption), [c.value for c in at.caption]
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    dca = [s for s in specs if "Decision curves" in s]
    assert len(dca) == 1 and '"name":"treat all"' in dca[0] and '"name":"logistic regression"' in dca[0]
    buttons = [b for b in at.get("download_button") if "Report (HTML" in b.proto.label]
    assert len(buttons) == 1, [b.proto.label for b in at.get("download_button")]
    # what the button's deferred function builds (login off: the owner check needs no session)
    from app.cache import run_report
    from core.exceptions import CoreError
    text = run_report(str(tmp_path / "runs" / "dca-run"))()
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")     # plotly's div ids
    assert uuid.sub("id", text) == uuid.sub("id", build_report(load_run(tmp_path / "runs" / "dca-run")))
    assert "logistic regression" in text and "gradient boosting" in text and "dca-run" in text
    with pytest.raises(CoreError, match="not found among your runs"):
        run_report(str(tmp_path / "elsewhere" / "dca-run"))
