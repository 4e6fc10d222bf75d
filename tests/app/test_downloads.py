"""Downloads belong to their browser (app/security.py): a copied ``/media/`` link works only with the cookie of
the browser that clicked, for ``DOWNLOAD_SECONDS``, and not after "Log out". Checked against a real server
(``streamlit run`` of _download_serve.py, the middleware of serve.py) with a plain HTTP and websocket client."""
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from core.users import add_user
from tests.helpers.browser import start_app, stop_app, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
TTL = 3.0                                  # what _download_app.py sets as security.DOWNLOAD_SECONDS
BODY = b"patient_id,risk\nq001,0.91\n"


def _get(port: int, path: str, cookie: str | None, method: str = "GET") -> tuple[int, bytes, object]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers


class _Browser:
    """What the app's page does over its websocket: run the script, fill widgets, click, ask for a deferred file."""

    def __init__(self, port: int, cookie: str) -> None:
        from websockets.sync.client import connect
        self.ws = connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                          origin=f"http://127.0.0.1:{port}", additional_headers={"Cookie": cookie}).__enter__()
        self.elements: dict[str, object] = {}
        self.session_id = ""

    def __enter__(self) -> "_Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.ws.__exit__(*exc)

    def run(self, **widgets) -> dict:
        """Rerun with ``widgets`` ({element label: value; True clicks a button}); {label: element} once finished."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        msg = BackMsg()
        msg.rerun_script.SetInParent()
        for label, value in widgets.items():
            state = msg.rerun_script.widget_states.widgets.add(id=self.elements[label].id)
            if value is True:
                state.trigger_value = True
            else:
                state.string_value = value
        self.ws.send(msg.SerializeToString())
        self.elements = {}
        while True:
            fwd = self._receive()
            if fwd.WhichOneof("type") == "new_session":           # a run starts (again, after st.rerun)
                self.elements, self.session_id = {}, fwd.new_session.initialize.session_id
            if fwd.WhichOneof("type") == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                element = fwd.delta.new_element
                kind = element.WhichOneof("type")
                if kind in ("button", "text_input", "download_button"):
                    self.elements[getattr(element, kind).label] = getattr(element, kind)
            if fwd.WhichOneof("type") == "script_finished" and fwd.script_finished == fwd.FINISHED_SUCCESSFULLY:
                return self.elements

    def click_download(self, label: str) -> str:
        """The ``/media/`` address the page gets when ``label`` is clicked (the file is built now)."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        msg = BackMsg()
        msg.backend_operation_request.request_id = "r1"
        msg.backend_operation_request.session_id = self.session_id
        msg.backend_operation_request.deferred_file.file_id = self.elements[label].deferred_file_id
        self.ws.send(msg.SerializeToString())
        while True:
            fwd = self._receive()
            if fwd.WhichOneof("type") == "backend_operation_response":
                assert not fwd.backend_operation_response.error_msg, fwd.backend_operation_response.error_msg
                return fwd.backend_operation_response.deferred_file.url

    def _receive(self):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        fwd = ForwardMsg()
        fwd.ParseFromString(self.ws.recv(timeout=60))
        return fwd

    def log_in(self, name: str, password: str) -> None:
        self.run()
        self.run(Username=name, Password=password, **{"Log in": True})
        assert "Log out" in self.elements, list(self.elements)


def test_a_copied_download_link_needs_its_browser_and_dies_at_logout_and_after_minutes(tmp_path, monkeypatch):
    pytest.importorskip("websockets")
    users = tmp_path / "users.toml"
    add_user(users, "alice", "correct horse 1")
    monkeypatch.setenv("CHRONOSCOPE_USERS_FILE", str(users))          # the server inherits the environment
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path / "tmp"))
    proc, port = start_app(str(ROOT), "tests/app/_download_serve.py", sys.executable)
    try:
        assert wait_healthy(port, 80), "the test server did not start"
        status, _, headers = _get(port, "/", None)
        set_cookie = headers["Set-Cookie"]
        assert status == 200 and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie, set_cookie
        cookie = set_cookie.split(";")[0]
        other = "chronoscope_dl=" + "A" * 43                # another browser's well-formed token
        assert re.fullmatch(r"chronoscope_dl=[A-Za-z0-9_-]{43}", cookie)
        assert "Set-Cookie" not in _get(port, "/", cookie)[2]    # a browser keeps its token

        with _Browser(port, cookie) as page:
            page.log_in("alice", "correct horse 1")
            url = page.click_download("Predictions (CSV)")
            assert re.fullmatch(r"/media/\w+\.csv", url), url
            status, body, headers = _get(port, url, cookie)
            assert (status, body) == (200, BODY) and headers["Cache-Control"] == "no-store"
            for who in (None, other):                            # the copied link: no cookie, or someone else's
                status, body, _ = _get(port, url, who)
                assert status == 404 and b"q001" not in body and b"Click its button" in body
                assert _get(port, url, who, "HEAD")[0] == 404
            assert _get(port, "/media/" + "0" * 32 + ".csv", cookie)[0] == 404

            page.run(**{"Log out": True})                        # the real "Log out" of app/auth.py
            assert "Username" in page.elements
            assert _get(port, url, cookie)[0] == 404

            page.log_in("alice", "correct horse 1")
            url = page.click_download("Predictions (CSV)")
            assert _get(port, url, cookie)[:2] == (200, BODY)
            time.sleep(TTL + 0.5)
            assert _get(port, url, cookie)[0] == 404
    finally:
        stop_app(proc)


def test_every_download_button_of_the_app_is_the_guarded_one():
    """A page that called st.download_button itself would serve its file to anyone with the address."""
    direct = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "app").rglob("*.py")) if p.name != "security.py"
              for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\.download_button\(", line)]
    assert direct == [], f"use app.security.download_button: {direct}"


def test_serve_py_puts_the_guard_in_front_of_the_app():
    """``streamlit run serve.py`` serves an st.App only when the script assigns one literally (Streamlit reads it)."""
    from streamlit.web.server.app_discovery import discover_asgi_app
    assert discover_asgi_app(ROOT / "serve.py").app_name == "app"
    assert 'st.App("streamlit_app.py", middleware=MIDDLEWARE)' in (ROOT / "serve.py").read_text()


@pytest.mark.parametrize("path, guarded", [
    ("/media/abc123.csv", True), ("/media/abc123.csv/", True), ("/app/media/abc123.csv", "base"),
    ("/static/media/SourceSansVF-Upright.ttf.BsWL4Kly.woff2", False),      # the app's fonts and icons
    ("/static/media/MaterialSymbols-Rounded.nEdyypZU.woff2", False), ("/media/", False), ("/", False),
])
def test_the_guard_stops_media_files_only_never_the_apps_static_files(path, guarded, monkeypatch):
    import asyncio

    from streamlit import config

    from app import security
    monkeypatch.setattr(config, "get_option", lambda name: "app" if guarded == "base" else "")
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "scheme": "http"}
    asyncio.run(security.DownloadGuard(app)(scope, None, send))
    assert (sent[0]["status"] == 404 and not seen) if guarded else (sent[0]["status"] == 200 and seen == [path])
