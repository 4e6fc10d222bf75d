"""Login (app/auth.py, core/users.py): off by default; with a users file, a form, one refusal message,
throttling, per-user folders and caches."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.exceptions import CoreError
from core.users import LoginThrottle, add_user, check_login, read_users, remove_user, verify_password

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def users(tmp_path, monkeypatch):
    path = tmp_path / "users.toml"
    add_user(path, "alice", "correct horse 1")
    add_user(path, "bob", "battery staple 2")
    monkeypatch.setenv("CHRONOSCOPE_USERS_FILE", str(path))
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path / "tmp"))
    return path


def _login(name, password):
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.text_input(key="auth.name").input(name)
    at.text_input(key="auth.password").input(password)
    at.button[0].click().run()
    return at


def test_the_users_file_holds_only_salted_slow_hashes(users):
    text = users.read_text()
    assert "correct horse" not in text and text.count("scrypt$16384$8$1$") == 2
    assert users.stat().st_mode & 0o777 == 0o600
    a, b = read_users(users)["alice"], read_users(users)["bob"]
    assert a.split("$")[4] != b.split("$")[4]                           # a salt per user
    assert verify_password(users, "alice", "correct horse 1")
    assert not verify_password(users, "alice", "correct horse 2") and not verify_password(users, "carol", "x" * 9)
    with pytest.raises(CoreError, match="at least 8"):
        add_user(users, "carol", "short")
    with pytest.raises(CoreError, match="not allowed"):
        add_user(users, "../etc", "long enough 1")


def test_no_page_before_login_and_one_message_for_a_wrong_name_or_password(users):
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    assert [t.value for t in at.title] == ["Chronoscope"] and not at.exception
    assert at.text_input(key="auth.name").label == "Username" and at.text_input(key="auth.password").label == "Password"
    wrong_pw, wrong_name = _login("alice", "nope nope"), _login("mallory", "correct horse 1")
    assert [e.value for e in wrong_pw.error] == [e.value for e in wrong_name.error] == ["Wrong username or password."]
    ok = _login("alice", "correct horse 1")
    assert not ok.exception and "auth.password" not in ok.session_state
    assert any("Logged in as alice" in t.value for t in ok.text)
    ok.button(key="auth.logout").click().run()
    assert [t.value for t in ok.title] == ["Chronoscope"] and ok.text_input(key="auth.name").value == ""


def test_repeated_failures_are_slowed_down():
    now = [0.0]
    t = LoginThrottle(free=3, max_wait=60, clock=lambda: now[0])
    for _ in range(3):
        assert t.attempt("alice") == 0            # allowed, and counted as a failure until it succeeds
    assert t.wait("ALICE") == 2.0 and t.attempt("alice") == 2.0    # the 4th attempt waits 2 s, the 5th 4 s ...
    now[0] = 2.0
    assert t.attempt("alice") == 0
    assert t.wait("alice") == 4.0 and t.wait("bob") == 0
    now[0] = 10.0
    assert t.attempt("alice") == 0
    t.succeeded("alice")
    assert t.wait("alice") == 0


def test_each_user_has_their_own_folders(users, tmp_path):
    from core.runs.store import list_runs
    a, b = _login("alice", "correct horse 1"), _login("bob", "battery staple 2")
    for at in (a, b):
        at.switch_page("app/pages/compare.py").run()
        assert not at.exception, [e.value for e in at.exception]
    # a run saved in alice's folder is listed for alice only
    from core.training.experiment import run_experiment
    from core.runs.store import save_run
    from tests.helpers.cohorts import make_tiny_cohort
    save_run(run_experiment(make_tiny_cohort(40), ["lr"], preset="test"), tmp_path / "runs" / "users" / "alice" / "r1")
    assert [r["name"] for r in list_runs(tmp_path / "runs" / "users" / "alice")] == ["r1"]
    a.run()
    b.run()
    assert any("Earlier runs (1" in e.label for e in a.expander), [e.label for e in a.expander]
    assert not any("Earlier runs" in e.label for e in b.expander), [e.label for e in b.expander]
    # alice's run as the current run: shown to alice, never to bob (the key holds a path; it is owner-checked)
    from app.state import CURRENT_RUN
    r1 = str(tmp_path / "runs" / "users" / "alice" / "r1")
    for at in (a, b):
        at.session_state[CURRENT_RUN] = r1
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert a.session_state[CURRENT_RUN] == r1 and a.dataframe, "alice sees her run's leaderboard"
    assert CURRENT_RUN not in b.session_state and not b.dataframe, "bob never sees alice's run"


def test_cli_users_add_reads_the_password_from_stdin(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "u.toml"
    r = subprocess.run([sys.executable, "-m", "core", "users", "add", "carol", "--file", str(path)],
                       input="a long passphrase\n", text=True, capture_output=True, cwd=ROOT)
    assert r.returncode == 0 and "Added carol" in r.stdout and verify_password(path, "carol", "a long passphrase")
    r = subprocess.run([sys.executable, "-m", "core", "users", "add", "carol", "--file", str(path)],
                       input="", text=True, capture_output=True, cwd=ROOT)
    assert r.returncode == 2 and "No password" in r.stderr and "Traceback" not in r.stderr


def test_simultaneous_wrong_passwords_get_exactly_three_checks(users, monkeypatch):
    """8 wrong passwords for one name at the same moment: 3 are checked, 5 are told to wait (the check and the
    reservation of an attempt are one step)."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import core.users
    checks, real = [], core.users.verify_password

    def counted(*args):
        checks.append(1)
        time.sleep(0.05)                               # every thread is past its own check before any failure
        return real(*args)
    monkeypatch.setattr(core.users, "verify_password", counted)
    throttle, start = LoginThrottle(), threading.Barrier(8)

    def one(_):
        start.wait()
        return check_login(users, "alice", "wrong password", throttle, sleep=lambda s: None)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    assert len(checks) == 3
    assert not any(ok for ok, _ in results) and sum(wait > 0 for _, wait in results) == 5
    ok, wait = check_login(users, "alice", "correct horse 1", throttle, sleep=lambda s: None)
    assert not ok and wait > 0 and len(checks) == 3     # even the right password waits its turn, unchecked


def test_removing_a_user_or_changing_their_password_ends_their_sessions_at_the_next_action(users):
    alice, bob = _login("alice", "correct horse 1"), _login("bob", "battery staple 2")
    remove_user(users, "alice")
    alice.run()
    bob.run()
    assert [t.value for t in alice.title] == ["Chronoscope"] and alice.text_input(key="auth.name").value == ""
    assert "auth.user" not in alice.session_state and not alice.exception
    assert any("no longer" in i.value for i in alice.info), [i.value for i in alice.info]
    assert any("Logged in as bob" in t.value for t in bob.text)           # the others stay logged in
    add_user(users, "bob", "a new password 3")
    bob.run()
    assert [t.value for t in bob.title] == ["Chronoscope"] and "auth.user" not in bob.session_state
    again = _login("alice", "correct horse 1")
    assert [e.value for e in again.error] == ["Wrong username or password."]
