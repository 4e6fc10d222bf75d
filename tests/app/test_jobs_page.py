"""The Jobs page: where jobs run is the server's configuration, shown read-only; nobody can change it there."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers.pages import unescape

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _folders(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path / "tmp"))
    monkeypatch.delenv("CHRONOSCOPE_BACKEND", raising=False)
    monkeypatch.delenv("CHRONOSCOPE_RAY_ADDRESS", raising=False)


def _jobs_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("app/pages/jobs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _said(at: AppTest) -> str:
    return unescape(" ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.info, *at.error]))


def test_the_backend_is_shown_and_cannot_be_changed_on_the_page(monkeypatch):
    at = _jobs_page()
    assert not at.text_input and not at.radio and not at.button, "nothing on the page chooses a backend"
    assert "This server" in _said(at) and "CHRONOSCOPE_BACKEND" in _said(at)      # login off: the operator is here
    monkeypatch.setenv("CHRONOSCOPE_BACKEND", "ray")
    monkeypatch.setenv("CHRONOSCOPE_RAY_ADDRESS", "head-node:6379")
    at = _jobs_page()
    assert "Ray cluster at head-node:6379" in _said(at) and not at.text_input


def test_a_wrong_backend_setting_is_a_message_naming_the_variable(monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_BACKEND", "spark")
    at = _jobs_page()
    errors = [unescape(e.value) for e in at.error]
    assert any("CHRONOSCOPE_BACKEND='spark'" in e and "local" in e for e in errors), errors


def test_with_login_on_users_see_the_backend_but_not_the_address_or_how_to_change_it(tmp_path, monkeypatch):
    from core.users import add_user
    add_user(tmp_path / "users.toml", "alice", "correct horse 1")
    monkeypatch.setenv("CHRONOSCOPE_USERS_FILE", str(tmp_path / "users.toml"))
    monkeypatch.setenv("CHRONOSCOPE_BACKEND", "ray")
    monkeypatch.setenv("CHRONOSCOPE_RAY_ADDRESS", "head-node:6379")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.text_input(key="auth.name").input("alice")
    at.text_input(key="auth.password").input("correct horse 1")
    at.button[0].click().run()
    at.switch_page("app/pages/jobs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    said = _said(at)
    assert "Ray cluster" in said and "head-node" not in said and "CHRONOSCOPE_" not in said, said
    assert not at.text_input and not at.radio

