"""Time-order and How-RNNs-work pages: the analysis is the current run's (kept with it, shown from its folder, never
another run's or other data's); with no run the button trains one first; the gates of a small GRU and LSTM, and a
data change shows no error. Tiny uploads, test preset, 20 bootstrap resamples."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import state
from core.config import EvaluationConfig
from core.analysis.timeorder import load_timeorder
from tests.helpers.pages import finish_jobs, session_job_states, tiny_upload

ROOT = Path(__file__).resolve().parents[2]
FAST = EvaluationConfig(n_bootstrap=20)
#: the analysis: one early horizon, lr refitted on it (TimeOrderRequest fields)
TINY = {"horizons_hours": (3.0,), "early_models": ("lr",)}


def _source(folder: Path, seed: int, n_patients: int = 120) -> tuple[state.DataSource, object]:
    """An upload of a tiny cohort and the cohort the app reads from it."""
    folder.mkdir(parents=True)
    return tiny_upload(folder, n_patients=n_patients, seed=seed)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two tiny uploads (the second is other data), and two comparisons (lr, gru; seeds 0 and 1) on the first."""
    from core.training.experiment import run_experiment
    folder = tmp_path_factory.mktemp("timeorder")
    (source, cohort), (other, _) = _source(folder / "a", 1), _source(folder / "b", 2, 60)
    runs = [run_experiment(cohort, ["lr", "gru"], preset="test", evaluation=FAST, random_state=s) for s in (0, 1)]
    return source, other, runs


def _page(monkeypatch, tmp_path, page: str, **session) -> AppTest:
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path / "tmp"))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    for k, v in session.items():
        at.session_state[k] = v
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _verdicts(at: AppTest) -> list[str]:
    return [m.value for m in [*at.success, *at.info, *at.warning] if "Verdict" in m.value]


def _analyse(at: AppTest) -> AppTest:
    at.button(key="timeorder.run").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_the_analysis_is_the_current_runs_and_other_data_hide_it(data, monkeypatch, tmp_path):
    from core.runs.store import save_run
    source, other, (first, second) = data
    a = save_run(first, tmp_path / "runs" / "run-a")
    at = _page(monkeypatch, tmp_path, "app/pages/timeorder.py",
               **{state.DATA_SOURCE: source, state.TIMEORDER_CONFIG_OVERRIDE: TINY})
    assert at.session_state[state.CURRENT_RUN] == str(a)             # the run on this data is current
    assert session_job_states(at) == {} and not _verdicts(at)        # nothing starts on opening
    assert any("No time-order analysis of the run run-a yet" in i.value.replace("\\", "") for i in at.info)
    _analyse(at)
    result = load_timeorder(a)                                       # kept with the run
    assert result is not None and result.run == "run-a" and set(result.horizons["hours"]) == {3.0, 48.0}
    assert _verdicts(at) == [f"**Verdict.** {result.verdict}"]
    assert result.n_patients["test"] == len(first.splits["test"])   # the run's own test patients
    assert len(at.get("plotly_chart")) >= 4                          # ablation, forest, horizons, tiers
    # the tiers: a heading, the two sentences, the table with CIs
    assert any("three tiers" in h.value for h in at.subheader)
    shown = " ".join(m.value for m in at.markdown)
    assert "summaries" in shown and "measured" in shown
    tier_table = next(df.value for df in at.dataframe if "tier" in df.value.columns)
    assert list(tier_table["tier"]) == ["order-free summaries", "time-aware summaries", "sequence model"]
    assert tier_table["AUROC CI"].str.startswith("[").all()
    assert result.tiers is not None and result.missingness is not None
    # another run made current (as "Open this run" does): not run-a's verdict
    b = save_run(second, tmp_path / "runs" / "run-b")
    at.session_state[state.CURRENT_RUN] = str(b)
    at.run()
    assert not at.exception and not _verdicts(at)
    assert any("No time-order analysis of the run run-b yet" in i.value.replace("\\", "") for i in at.info)
    at.session_state[state.CURRENT_RUN] = str(a)
    at.run()
    assert _verdicts(at) == [f"**Verdict.** {result.verdict}"]
    # other data: the old verdict is not shown
    at.session_state[state.DATA_SOURCE] = other
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert not _verdicts(at) and not at.get("plotly_chart")
    assert any("No run on this data yet" in i.value for i in at.info)
    assert len(session_job_states(at)) == 1                          # nothing started on the new data


def test_without_a_run_the_button_trains_one_then_analyses_it_without_tiers(data, monkeypatch, tmp_path):
    source, _, _ = data
    at = _page(monkeypatch, tmp_path, "app/pages/timeorder.py",
               **{state.DATA_SOURCE: source, state.TIMEORDER_CONFIG_OVERRIDE: {**TINY, "tiers": False},
                  state.TRAIN_OVERRIDE: {"preset": "test", "models": ("lr", "gru"), "evaluation": FAST}})
    assert state.CURRENT_RUN not in at.session_state
    assert any("trains the comparison first" in i.value for i in at.info)      # says what the button does
    _analyse(at)
    assert len(session_job_states(at)) == 1                          # one job: training, then the analysis
    folder = Path(at.session_state[state.CURRENT_RUN])               # the run trained for it is current
    result = load_timeorder(folder)
    assert result is not None and result.run == folder.name and result.tiers is None
    assert _verdicts(at) == [f"**Verdict.** {result.verdict}"]
    assert not any("three tiers" in h.value for h in at.subheader)
    assert len(at.get("plotly_chart")) == 3


def test_models_page_trains_and_shows_gates_and_a_data_change_shows_no_error(data, monkeypatch, tmp_path):
    from core.runs.store import save_run
    source, other, (first, _) = data
    at = _page(monkeypatch, tmp_path, "app/pages/models.py",
               **{state.DATA_SOURCE: other,
                  state.MODELS_TRAIN_OVERRIDE: {"max_patients": 60, "max_epochs": 2, "hidden_size": 4}})
    assert len(at.get("latex")) >= 3
    assert session_job_states(at) == {} and not at.get("plotly_chart")
    at.button(key="models.train").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 2
    at.selectbox(key="models.model").select("lstm").run()
    at.radio(key="models.gate.lstm").set_value("forget").run()
    assert not at.exception, [e.value for e in at.exception]
    # other data with a run holding a GRU: its gates, not the small pair's; no stale patient or model
    save_run(first, tmp_path / "runs" / "run-a")
    at.session_state[state.DATA_SOURCE] = source
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("Models of the current run" in c.value for c in at.caption), [c.value for c in at.caption]
    assert at.selectbox(key="models.model").options == ["GRU"]
    assert at.selectbox(key="models.patient").value in [str(p) for p in first.splits["test"]]
    assert len(at.get("plotly_chart")) == 2
    # back to the first data: its small pair again
    at.session_state[state.DATA_SOURCE] = other
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("trained on this page" in c.value for c in at.caption), [c.value for c in at.caption]
