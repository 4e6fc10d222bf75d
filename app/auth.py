"""Who is using the app, and where their things live.

Three modes, chosen by the server's configuration (docs/deployment.md, "Login"):

* **off** (the local demo, the default): one local user; everything as before.
* **users**: ``CHRONOSCOPE_USERS_FILE`` names a users file (:mod:`core.users`, made with
  ``python -m core users add NAME --file F``); a login form with "Username", "Password" and "Log in".
* **oidc**: an ``[auth]`` section in ``.streamlit/secrets.toml``; Streamlit's ``st.login`` sends the
  user to the OpenID Connect provider.

With login on, every upload, run, job and cached result belongs to its user (:func:`owner`):
runs are saved under ``RUNS/users/<owner>/``, unsaved runs in ``TMP/<owner>/``, jobs and caches are
keyed by it, and a page only ever lists or opens the current user's.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import streamlit as st

from app.security import revoke_downloads
from core.exceptions import CoreError
from core.settings import read_settings
from core.users import check_login, user_hash

__all__ = ["mode", "owner", "display_name", "require_login", "sidebar", "NOTE"]

AUTH_USER = "auth.user"
#: a digest of the logged-in user's password hash at login: a new password ends the session too.
AUTH_KEY = "auth.key"
#: shown on every page and on the login form.
NOTE = ("Chronoscope supports research and audit of clinical prediction models. It is not a medical device and "
        "must not be used for diagnosis or treatment decisions.")


def _secrets_file() -> bool:
    return any(p.is_file() for p in (Path(".streamlit/secrets.toml"), Path.home() / ".streamlit" / "secrets.toml"))


def mode() -> str:
    """``"users"``, ``"oidc"`` or ``"off"`` (see the module docstring)."""
    if read_settings().users_file:
        return "users"
    if _secrets_file():
        try:
            if "auth" in st.secrets:
                return "oidc"
        except Exception:          # a broken secrets file: Streamlit reports it; login stays off
            return "off"
    return "off"


def _oidc_name() -> str | None:
    user = st.user
    if not getattr(user, "is_logged_in", False):
        return None
    return str(user.get("email") or user.get("sub") or "")


def display_name() -> str | None:
    """The logged-in user's name (``None`` when nobody is logged in; ``""`` when login is off)."""
    m = mode()
    if m == "off":
        return ""
    if m == "users":
        return st.session_state.get(AUTH_USER)
    return _oidc_name()


def owner() -> str:
    """The current user as a folder-safe key ("" with login off): the user name, or for OIDC a hash of the e-mail."""
    m = mode()
    if m == "off":
        return ""
    name = display_name()
    if not name:
        raise CoreError("Nobody is logged in.")
    if m == "users":
        return name
    return "oidc-" + re.sub(r"[^A-Za-z0-9]+", "-", name.split("@")[0])[:20] + "-" + \
        hashlib.sha256(name.encode()).hexdigest()[:12]


#: the login form has exactly two labelled fields, "Username" and "Password". Streamlit's password type
#: adds a "Show password" button (a second element labelled "password"), so the field is a text input
#: masked by our own static CSS (nothing from a user), with the browser's password autocomplete hint.
_FORM_CSS = '<style>input[aria-label="Password"] {-webkit-text-security: disc; text-security: disc;}</style>'


def _login_form() -> None:
    st.title("Chronoscope")
    st.caption(NOTE)
    st.html(_FORM_CSS)
    with st.form("auth.login"):
        name = st.text_input("Username", key="auth.name", autocomplete="username")
        password = st.text_input("Password", key="auth.password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary")
    if not submitted:
        return
    from app.resources import login_throttle
    path = read_settings().users_file
    try:
        ok, wait = check_login(path, name, password, login_throttle())     # slowed down after 3 failures
        stored = user_hash(path, name) if ok else None
    except CoreError:
        st.error("Login is not available: the server's users file cannot be read. Ask its administrator.")
        return
    if wait > 0:
        st.error(f"Too many failed attempts. Wait {wait:.0f} s, then try again.")
        return
    if ok and stored is not None:
        st.session_state[AUTH_USER] = name
        st.session_state[AUTH_KEY] = _key(stored)
        st.session_state.pop("auth.password", None)
        st.rerun()
    st.error("Wrong username or password.")


def _key(stored_hash: str) -> str:
    return hashlib.sha256(stored_hash.encode()).hexdigest()


def _still_valid() -> bool:
    """Whether the logged-in user of the users file is still in it with the same password (asked on every
    script run; the file is read again only when it changed). A file that cannot be read ends the session."""
    try:
        stored = user_hash(read_settings().users_file, st.session_state.get(AUTH_USER, ""))
    except CoreError:
        return False
    return stored is not None and _key(stored) == st.session_state.get(AUTH_KEY)


def _end_session() -> None:
    """Forget everything of this session (uploads, results, jobs, the login) and its download links."""
    revoke_downloads()
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def require_login() -> None:
    """Draw the login (and stop the script) until someone is logged in; nothing with login off."""
    m = mode()
    ended = m == "users" and bool(display_name()) and not _still_valid()
    if ended:                      # removed from the users file, or a new password: this session ends now
        _end_session()
    if m == "off" or display_name():
        return
    if m == "users":
        if ended:
            st.info("You are no longer logged in: this account was removed from the server's users, or its "
                    "password changed. Log in again if it still exists.")
        _login_form()
    else:
        st.title("Chronoscope")
        st.caption(NOTE)
        st.button("Log in", type="primary", on_click=st.login)
    st.stop()


def sidebar() -> None:
    """Who is logged in, a "Log out" button, and the research-only note (every page)."""
    with st.sidebar:
        name = display_name()
        if name:
            st.text(f"Logged in as {name}")
            if st.button("Log out", key="auth.logout"):
                revoke_downloads()                              # this browser's download links die now
                if mode() == "oidc":
                    st.logout()
                for key in list(st.session_state.keys()):       # uploads, results, jobs of this session
                    del st.session_state[key]
                st.rerun()
        st.caption(NOTE)
