"""HTTP protection of the server: security headers on every response, and downloads that belong to their browser.

Streamlit has no setting for response headers, but it serves an ``st.App`` (an ASGI application)
found in the script given to ``streamlit run``; ``serve.py`` is that script: it
puts :data:`MIDDLEWARE`, two pure ASGI middlewares, in front of the app of ``streamlit_app.py``.

* :class:`SecurityHeaders` sends :data:`HEADERS` with every HTTP response (pages, static files, uploads).
* :class:`DownloadGuard` keeps downloads to the browser that made them. Streamlit serves a download
  button's file at ``/media/<id>`` to anyone who has the address, cookie or not, for as long as the
  file is kept. Here every download button is :func:`download_button`: its file is built when clicked
  (Streamlit's deferred ``data``), and the click *grants* that file's content to the clicking browser
  for :data:`DOWNLOAD_SECONDS`. The browser is known by :data:`COOKIE`, a random token the guard sets
  on the app's page (``HttpOnly``, ``SameSite=Lax``; ``Secure`` over HTTPS) and that the script reads
  from its websocket's cookies (``st.context.cookies``). A ``/media/`` request is answered only with
  that cookie and an unexpired grant of the file's content (a SHA-256 of the bytes Streamlit serves);
  anything else, any other ``/media/`` file included, gets 404. "Log out" revokes the browser's grants
  (:func:`revoke_downloads`). ``Lax`` rather than ``Strict``: a ``Strict`` cookie is not sent when the
  app is opened from a link on another site, so that page load would set a new token and break the
  downloads of the tabs already open; the token only guards reads, which another site cannot see.
"""
from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable

import streamlit as st
from starlette.middleware import Middleware

__all__ = ["SecurityHeaders", "DownloadGuard", "HEADERS", "COOKIE", "DOWNLOAD_SECONDS", "MIDDLEWARE",
           "download_button", "revoke_downloads"]

HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

#: the name of the browser's download cookie.
COOKIE = "chronoscope_dl"
#: how long a click's file stays downloadable (the browser fetches it at once; a copied link dies after this).
DOWNLOAD_SECONDS = 120.0

_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")            # secrets.token_urlsafe(32)
_NOT_FOUND = (b"This download has expired or belongs to another browser. Click its button in the app again "
              b"(downloads work for the browser that clicked, for a few minutes).")
_GUARD_ON = threading.Event()                       # set once a DownloadGuard serves this process


class SecurityHeaders:
    """Pure ASGI middleware: adds :data:`HEADERS` to every HTTP response (websockets pass through)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_headers)


class _Grants:
    """Which browser (token) may fetch which content (SHA-256), until when (monotonic seconds). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, dict[str, float]] = {}

    def add(self, token: str, digest: str, now: float) -> None:
        with self._lock:
            for tok in list(self._until):                # forget expired grants, so the table stays small
                live = {d: t for d, t in self._until[tok].items() if t > now}
                if live:
                    self._until[tok] = live
                else:
                    del self._until[tok]
            self._until.setdefault(token, {})[digest] = now + DOWNLOAD_SECONDS

    def allows(self, token: str | None, digest: str, now: float) -> bool:
        with self._lock:
            return token is not None and self._until.get(token, {}).get(digest, now) > now

    def revoke(self, token: str) -> None:
        with self._lock:
            self._until.pop(token, None)


_GRANTS = _Grants()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cookie_token(headers) -> str | None:
    """The download token among the ``Cookie`` headers of an ASGI scope (``None`` if absent or malformed)."""
    for key, value in headers:
        if key.lower() != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            name, _, token = part.strip().partition("=")
            if name == COOKIE and _TOKEN.fullmatch(token):
                return token
    return None


async def _granted(token: str | None, file_id: str) -> bool:
    """Whether the file Streamlit holds as ``file_id`` was granted to ``token`` and the grant is live."""
    from streamlit import runtime
    if token is None or not runtime.exists():
        return False
    manager = runtime.get_instance().media_file_mgr
    if not manager.can_read_files:                    # a storage we cannot check: refuse rather than guess
        return False
    media = manager.read_file(file_id)
    if media is None:
        return False
    content = media.content
    digest = _digest(content) if len(content) < 1 << 20 else await asyncio.to_thread(_digest, content)
    return _GRANTS.allows(token, digest, time.monotonic())


class DownloadGuard:
    """Pure ASGI middleware: ``/media/`` only for the browser a click granted it to; sets :data:`COOKIE` on pages."""

    def __init__(self, app) -> None:
        self.app = app
        _GUARD_ON.set()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        token = _cookie_token(scope.get("headers", []))
        media = _media_id(scope["path"])
        if media is not None and scope["method"] in ("GET", "HEAD"):
            if not await _granted(token, media):
                return await _refuse(send, scope["method"] == "HEAD")
            return await self.app(scope, receive, _with_headers(send, [(b"cache-control", b"no-store")]))
        if token is not None:
            return await self.app(scope, receive, send)
        secure = "; Secure" if _https(scope) else ""
        cookie = f"{COOKIE}={secrets.token_urlsafe(32)}; Path=/; HttpOnly; SameSite=Lax{secure}"
        return await self.app(scope, receive, _with_headers(send, [(b"set-cookie", cookie.encode())], html_only=True))


def _media_id(path: str) -> str | None:
    """The file id of a request for Streamlit's media endpoint (``/<baseUrlPath>/media/<id>``), else ``None``.

    Only that endpoint: the app's own static files (``/static/media/...``: fonts, icons) pass untouched."""
    from streamlit import config
    base = str(config.get_option("server.baseUrlPath") or "").strip("/")
    prefix = f"/{base}/media/" if base else "/media/"
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix):].rstrip("/")
    return rest if rest and "/" not in rest else None


def _https(scope) -> bool:
    forwarded = dict(scope.get("headers", [])).get(b"x-forwarded-proto", b"")
    return scope.get("scheme") == "https" or forwarded.lower() == b"https"


def _with_headers(send, extra: list[tuple[bytes, bytes]], html_only: bool = False):
    """``send`` that adds ``extra`` headers to the response (only to HTML pages with ``html_only``)."""
    async def sender(message):
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            ctype = dict((k.lower(), v) for k, v in headers).get(b"content-type", b"")
            if not html_only or ctype.startswith(b"text/html"):
                message = {**message, "headers": headers + extra}
        await send(message)
    return sender


async def _refuse(send, head: bool) -> None:
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store"),
                            (b"content-length", str(len(_NOT_FOUND)).encode())]})
    await send({"type": "http.response.body", "body": b"" if head else _NOT_FOUND})


#: what ``serve.py`` puts in front of the app: ``st.App("streamlit_app.py", middleware=MIDDLEWARE)``. (``streamlit
#: run`` finds the app by reading the script for a literal ``app = st.App(...)``, so that line stays in the script.)
MIDDLEWARE = [Middleware(SecurityHeaders), Middleware(DownloadGuard)]


def _session_token() -> str | None:
    token = st.context.cookies.get(COOKIE)           # not a str outside a served app (AppTest)
    return token if isinstance(token, str) and _TOKEN.fullmatch(token) else None


def download_button(label: str, make: Callable[[], str | bytes], file_name: str, *, mime: str, key: str,
                    help: str | None = None, where=st) -> None:
    """A download button whose file ``make()`` builds on click, for this browser only, for :data:`DOWNLOAD_SECONDS`.

    Parameters
    ----------
    label, file_name, mime, key, help
        As for ``st.download_button``.
    make
        Builds the file's text or bytes; called when the button is clicked (not on every rerun).
    where
        The container to draw in (``st`` or a column).

    Served by ``streamlit run streamlit_app.py`` (no :class:`DownloadGuard`), the file is Streamlit's
    ordinary deferred download. Under the guard, a session whose browser sent no download cookie gets a
    disabled button that says how to fix it.
    """
    if not _GUARD_ON.is_set():
        where.download_button(label, make, file_name, mime=mime, key=key, help=help)
        return
    token = _session_token()
    if token is None:
        where.download_button(label, b"", file_name, mime=mime, key=key, disabled=True,
                              help="Reload the page to download: this browser did not send the app's download "
                                   "cookie (allow cookies for this site).")
        return

    def build() -> bytes:
        data = make()
        data = data.encode("utf-8") if isinstance(data, str) else data
        _GRANTS.add(token, _digest(data), time.monotonic())
        return data

    where.download_button(label, build, file_name, mime=mime, key=key, help=help)


def revoke_downloads() -> None:
    """End every download granted to this browser (called by "Log out")."""
    token = _session_token()
    if token is not None:
        _GRANTS.revoke(token)
