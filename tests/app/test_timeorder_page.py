"""Time-order and How-RNNs-work pages: the Run / Train buttons work on the demo with tiny configs."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app import state
from core.config import EvaluationConfig
from tests.app.helpers import finish_jobs
from core.timeorder import TimeOrderConfig

ROOT = Path(__file__).resolve().parents[2]


def _page(page: str, **session) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    for k, v in session.items():
        at.session_state[k] = v
    at.run()
    at.switch_page(page).run()
    return at


def test_timeorder_page_runs_tiny_analysis():
    tiny = TimeOrderConfig(models=("lr", "gru"), horizons_hours=(12,), max_patients=160, preset="test",
                           evaluation=EvaluationConfig(n_bootstrap=20))
    at = _page("app/pages/timeorder.py", **{state.TIMEORDER_CONFIG_OVERRIDE: tiny})
    assert not at.exception and not at.error
    assert any("Run" in i.value for i in at.info)           # explains what Run does before a run
    at.button(key="timeorder.run").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    result = at.session_state[state.TIMEORDER_RESULT]
    assert result.config == tiny and set(result.horizons["hours"]) == {12.0, 48.0}
    assert any("Verdict" in m.value for m in [*at.success, *at.info, *at.warning])
    assert len(at.get("plotly_chart")) >= 4                  # ablation, forest, horizons, tiers
    # the tiers: a heading, the two sentences, the table with CIs
    assert any("three tiers" in h.value for h in at.subheader)
    shown = " ".join(m.value for m in at.markdown)
    assert "summaries" in shown and "measured" in shown
    tables = [df.value for df in at.dataframe]
    tier_table = next(t for t in tables if "tier" in t.columns)
    assert list(tier_table["tier"]) == ["order-free summaries", "time-aware summaries", "sequence model"]
    assert tier_table["AUROC CI"].str.startswith("[").all()
    assert result.tiers is not None and result.missingness is not None


def test_timeorder_page_without_tiers():
    tiny = TimeOrderConfig(models=("lr", "gru"), horizons_hours=(12,), max_patients=120, preset="test",
                           evaluation=EvaluationConfig(n_bootstrap=20), tiers=False)
    at = _page("app/pages/timeorder.py", **{state.TIMEORDER_CONFIG_OVERRIDE: tiny})
    at.button(key="timeorder.run").click().run()
    finish_jobs(at)
    assert not at.exception and not at.error
    assert at.session_state[state.TIMEORDER_RESULT].tiers is None
    assert not any("three tiers" in h.value for h in at.subheader)
    assert len(at.get("plotly_chart")) == 3


def test_models_page_trains_and_shows_gates():
    at = _page("app/pages/models.py", **{state.MODELS_TRAIN_OVERRIDE: {"max_patients": 120, "max_epochs": 2, "hidden_size": 4}})
    assert not at.exception and not at.error
    assert len(at.get("latex")) >= 3
    at.button(key="models.train").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 2
    at.selectbox(key="models.model").select("lstm").run()
    at.radio(key="models.gate.lstm").set_value("forget").run()
    assert not at.exception
