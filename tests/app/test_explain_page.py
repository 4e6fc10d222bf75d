"""The Explain page: renders without a run (info, no error), and after one click trains and explains."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.app.helpers import finish_jobs

ROOT = Path(__file__).resolve().parents[2]


def _page(monkeypatch, tmp_path, quick=("lr", "gru")) -> AppTest:
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    import app.cache
    monkeypatch.setattr(app.cache, "EXPLAIN_QUICK_MODELS", quick)
    monkeypatch.setattr(app.cache, "EXPLAIN_QUICK_PRESET", "test")      # tiny models: the click stays cheap
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=240)
    at.run()
    at.switch_page("app/pages/explain.py").run()
    return at


def test_no_run_yet_points_to_compare(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error
    assert any("Compare" in i.value for i in at.info)
    assert at.button(key="explain.train").label == "Train quick models now"


def test_train_button_then_explanations_render(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path)
    at.button(key="explain.train").click().run()
    finish_jobs(at)                     # the training, then the explanation job it leads to
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="explain.run").value
    charts = at.get("plotly_chart")
    # importance, agreement, GRU time heatmap, patient risk + heatmap, waterfall
    assert len(charts) >= 5, len(charts)
    box = at.selectbox(key="explain.patient")
    box.select(box.options[1]).run()
    assert not at.exception, [e.value for e in at.exception]
