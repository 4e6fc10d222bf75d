"""Every page renders on the demo cohort without exception (streamlit AppTest), and one interaction works."""
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.state import DATA_SOURCE, DataSource
from core.config import DataConfig
from tests.helpers.pages import unescape

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "app" / "pages").glob("*.py") if p.name != "__init__.py")


@pytest.fixture(autouse=True)
def _no_runs(tmp_path, monkeypatch):
    """Empty runs and server folders: the pages show the current run, which must not be one of a developer's."""
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path / "tmp"))


def _app(page: str, source: DataSource | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    if source is not None:
        at.session_state[DATA_SOURCE] = source
    at.run()
    at.switch_page(page).run()
    return at


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_demo(page):
    at = _app(page)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title, "every page shows a title"


def test_data_page_reports_unreadable_upload_without_traceback():
    bad = DataSource("upload", (("export.csv", b"<!DOCTYPE html><html><body>Sign in</body></html>"),), None,
                     DataConfig())
    at = _app("app/pages/data.py", bad)
    assert not at.exception
    assert any("web page" in e.value for e in at.error)


def test_other_pages_explain_missing_cohort():
    bad = DataSource("upload", (("empty.csv", b""),), None, DataConfig())
    at = _app("app/pages/cohort.py", bad)
    assert not at.exception
    assert any("No usable cohort" in w.value for w in at.warning)


def test_data_page_reports_untrainable_labels():
    events = b"patient_id,time,variable,value\n" + b"".join(
        f"p{i},{h},HR,{70 + i}\n".encode() for i in range(30) for h in range(3))
    labels = b"patient_id,died\n" + b"".join(f"p{i},{i % 3}\n".encode() for i in range(30))
    src = DataSource("upload", (("e.csv", events),), ("l.csv", labels), DataConfig(target="died"))
    at = _app("app/pages/data.py", src)
    assert not at.exception
    assert any("not binary" in e.value for e in at.error)


def test_data_page_reports_impossible_values_and_offers_to_keep_them():
    events = b"patient_id,time,variable,value\n" + b"".join(
        f"p{i},{h},HR,{70 + i}\n".encode() for i in range(30) for h in range(3)) + b"p1,1.5,pH,735\np2,2.5,Temp,-17.8\n"
    labels = b"patient_id,died\n" + b"".join(f"p{i},{i % 2}\n".encode() for i in range(30))
    src = DataSource("upload", (("e.csv", events),), ("l.csv", labels), DataConfig(target="died"))
    at = _app("app/pages/data.py", src)
    assert not at.exception, [e.value for e in at.exception]
    warned = [unescape(w.value) for w in at.warning]
    assert any("pH: 1 value(s) outside the plausible range 6.5 to 8" in w for w in warned), warned
    assert any("Temp: 1 value(s) outside the plausible range 25 to 45 °C" in w for w in warned), warned
    assert not any("--keep-implausible" in w for w in warned)          # the page names its own control


def test_timeline_switches_patient():
    at = _app("app/pages/timeline.py")
    box = at.selectbox(key="timeline.patient")
    second = box.options[1]
    box.select(second).run()
    assert not at.exception
    assert at.selectbox(key="timeline.patient").value == second


def test_cohort_changes_variable():
    at = _app("app/pages/cohort.py")
    at.selectbox(key="cohort.var").select("Lactate").run()
    assert not at.exception


def _shown_text(at: AppTest) -> list[str]:
    out = []
    for kind in ("markdown", "info", "warning", "error", "success", "caption"):
        out += [str(e.value) for e in getattr(at, kind)]
    return out


_FLAG = __import__("re").compile(r"(?<![\w-])--[a-z][a-z-]+")


@pytest.mark.parametrize("page", PAGES)
def test_no_page_names_a_command_line_option_or_a_server_path(page):
    at = _app(page)
    for text in _shown_text(at):
        assert not _FLAG.search(text), text
        assert str(ROOT) not in text, text


def test_validation_messages_name_the_pages_controls():
    events = b"patient_id,time,variable,value\n" + b"".join(
        f"p{i},{h},HR,{70 + i}\n".encode() for i in range(30) for h in range(3))
    labels = b"patient_id,died\n" + b"".join(f"p{i},{i % 3}\n".encode() for i in range(30))
    at = _app("app/pages/data.py", DataSource("upload", (("e.csv", events),), ("l.csv", labels),
                                              DataConfig(target="died")))
    texts = _shown_text(at)
    assert any("target box" in t for t in texts), texts       # core says --target; the page says which box
    assert not any(_FLAG.search(t) for t in texts), [t for t in texts if _FLAG.search(t)]


def test_gui_text_replaces_options_and_paths():
    from app.components import gui_text, gui_words
    assert gui_words("Give --labels and --target died.") == "Give the Labels upload and the target box died."
    assert gui_words("Run folder /srv/app/runs/r1 does not exist") == "Run folder r1 does not exist"
    assert gui_words("values in mg/dL or 10^3/µL") == "values in mg/dL or 10^3/µL"
    assert gui_text("Give --labels and --target died.") == r"Give the Labels upload and the target box died\."


def test_user_text_is_never_markdown():
    from app.components import plain
    for name in ("![x](http://host/a.png)", "[link](http://host/)", "<img src=x>", "# heading", ":red[x]",
                 "**bold**", "`code`", "a\nb"):
        out = plain(name)
        assert re.search(r"(?<!\\)[\[\]()<>#*`:!]", out) is None, out          # every mark escaped
        assert out.replace("\\", "").replace("\u200b", "") == name.replace("\n", " ")   # shown literally


def test_timeline_lists_every_patient_and_steps_with_previous_next():
    at = _app("app/pages/timeline.py")
    box = at.selectbox(key="timeline.patient")
    assert len(box.options) == 2000                          # no 500 cap on the demo's 2,000 patients
    first = box.value
    at.button(key="timeline.next").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="timeline.patient").value == box.options[1]
    at.button(key="timeline.prev").click().run()
    at.button(key="timeline.prev").click().run()
    assert at.selectbox(key="timeline.patient").value == box.options[-1]   # wraps around
    assert first == box.options[0]


def test_coded_attributes_are_decoded_with_units():
    from core.data.plausibility import describe_value
    assert describe_value("Gender", 1.0) == "male"
    assert describe_value("ICUType", 4.0) == "surgical ICU"
    assert describe_value("Weight", 72.0) == "72 kg"
    assert describe_value("Age", float("nan")) == "unknown"
    assert describe_value("Mystery", 3.0) == "3"
