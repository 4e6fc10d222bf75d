"""HTTP response headers on every response of the server: the app may not be framed by other sites.

Streamlit has no setting for response headers, but it serves an ``st.App`` (an ASGI application)
found in the script given to ``streamlit run``; ``serve.py`` is that script: the app of
``streamlit_app.py`` with :class:`SecurityHeaders` in front. ``streamlit run serve.py`` (the README's
command) therefore sends :data:`HEADERS` with every HTTP response (pages, static files, uploads).
"""
from __future__ import annotations

__all__ = ["SecurityHeaders", "HEADERS"]

HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


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
