"""Patient timeline, "What if...": stack edits (measurements, a static attribute), see every model's risk
change; a bad hour says why; an online run too."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.state import DATA_SOURCE, WHATIF_EDITS, DataSource
from core.config import DataConfig
from tests.helpers.pages import tiny_upload, unescape

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(trained_run, tmp_path_factory):
    """An upload of the tiny fixture and a run trained on exactly those data (the session's run, copied: lr, gbm,
    gru; test preset)."""
    from core.runs.store import copy_run
    folder = tmp_path_factory.mktemp("whatif")
    source, cohort = tiny_upload(folder)
    copy_run(trained_run.run_dir, folder / "runs" / "tiny-run")
    return source, cohort, folder / "runs"


def _timeline(trained, monkeypatch) -> AppTest:
    source, _, runs = trained
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(runs))
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(runs.parent / "tmp"))     # no unsaved run of another test
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.session_state[DATA_SOURCE] = source
    at.run()
    at.switch_page("app/pages/timeline.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _submit(at: AppTest, kind: str, variable: str, hour: float, value: float | None) -> AppTest:
    at.selectbox(key="timeline.whatif_kind").set_value(kind)
    at.selectbox(key="timeline.whatif_variable").set_value(variable)
    at.number_input(key="timeline.whatif_hour").set_value(hour)
    if value is not None:
        at.number_input(key="timeline.whatif_value").set_value(value)
    next(b for b in at.button if b.label == "Add this change").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _table(at: AppTest):
    return next(d.value for d in at.dataframe if "what-if risk" in d.value.columns)


def test_an_edit_changes_the_risk_and_can_be_undone(trained, monkeypatch):
    _, cohort, _ = trained
    at = _timeline(trained, monkeypatch)
    assert [e.label for e in at.expander if e.label.startswith("What if")] == ["What if…"]
    assert at.selectbox(key="timeline.whatif_kind").value == "add"          # the first-time user's change
    pid = at.selectbox(key="timeline.patient").value
    ev = cohort.patient_events(pid)
    hour = float(ev.loc[ev["variable"] == "HR", "time_hours"].iloc[1])
    _submit(at, "edit", "HR", hour, 300.0)
    assert not at.error, [e.value for e in at.error]
    assert len(at.session_state[WHATIF_EDITS][pid]) == 1
    table = _table(at)
    assert list(table["model"]) == ["logistic regression", "gradient boosting", "GRU"]
    assert (table["largest change"].abs() > 1e-6).any(), table
    assert any(f"HR at {hour:g} h set to 300" in t.value for t in at.text)
    fig = at.get("plotly_chart")[-1].proto.spec
    assert "logistic regression, original" in fig and "logistic regression, what-if" in fig and '"dash":"dash"' in fig
    _submit(at, "add", "Lactate", 2.0, 9.0)                     # stacked
    assert len(at.session_state[WHATIF_EDITS][pid]) == 2
    at.button(key="timeline.whatif_undo").click().run()         # undo the last one
    assert len(at.session_state[WHATIF_EDITS][pid]) == 1
    at.button(key="timeline.whatif_reset").click().run()        # and reset
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[WHATIF_EDITS][pid] == []
    assert not any("what-if risk" in d.value.columns for d in at.dataframe)


def test_a_bad_hour_or_a_missing_measurement_shows_the_message(trained, monkeypatch):
    at = _timeline(trained, monkeypatch)
    pid = at.selectbox(key="timeline.patient").value
    _submit(at, "add", "HR", 100.0, 90.0)
    errors = [unescape(e.value) for e in at.error]
    assert any("Hour 100 is outside the run's window (0 to 48 h)" in e for e in errors), errors
    _submit(at, "remove", "HR", 47.5, None)
    errors = [unescape(e.value) for e in at.error]
    assert any("No HR measurement at 47.5 h" in e and "pick one of those hours" in e for e in errors), errors
    assert at.session_state[WHATIF_EDITS][pid] == []                  # nothing refused was stacked
    _submit(at, "static", "Age", 0.0, 95.0)                          # a static attribute: the hour is ignored
    assert not at.error, [e.value for e in at.error]
    assert any("Age (static) set to 95" in t.value for t in at.text)
    assert (_table(at)["change"].abs() > 0).any()


def test_an_online_run_gets_the_what_if_too(tmp_path, monkeypatch):
    """Hourly data with a label column and a run on them: an edit moves the risk of later hours only."""
    from core.training.experiment import run_experiment
    from core.data.ingest import validate_data
    from core.runs.store import save_run
    from tests.helpers.cohorts import make_online_cohort
    from tests.helpers.cohorts import wide_csv
    wide_csv(make_online_cohort(40, seed=4), tmp_path / "hourly.csv")
    source = DataSource("upload", (("hourly.csv", (tmp_path / "hourly.csv").read_bytes()),), None,
                        DataConfig(task="online", target="Event", horizon_hours=6))
    cohort, _ = validate_data(source.events[0], None, config=source.config)
    save_run(run_experiment(cohort, ["lr", "gru"], preset="test"), tmp_path / "runs" / "online-run")
    at = _timeline((source, cohort, tmp_path / "runs"), monkeypatch)
    assert any("risk at every hour" in c.value for c in at.caption), [c.value for c in at.caption]
    pid = at.selectbox(key="timeline.patient").value
    ev = cohort.patient_events(pid)
    hour = float(ev.loc[ev["variable"] == "HR", "time_hours"].iloc[4])
    _submit(at, "edit", "HR", hour, 300.0)
    assert not at.error, [e.value for e in at.error]
    table = _table(at)
    assert list(table["model"]) == ["logistic regression", "GRU"]
    assert (table["at hour"] >= hour).all() and (table["largest change"].abs() > 1e-6).any(), table
    assert any("Risk at the last scored hour" in c.value for c in at.caption)
