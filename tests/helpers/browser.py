"""What the headless-browser scripts (tests/app/cancel_e2e.py, markdown_e2e.py, views_e2e.py) and the server tests
share: start the app on a free loopback port, wait until it answers, read the page, stop the app."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request

__all__ = ["free_port", "start_app", "wait_healthy", "stop_app", "open_page", "main_text", "wait_for"]


def free_port() -> int:
    """A free port on 127.0.0.1."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_app(root: str, entry: str, py: str) -> tuple[subprocess.Popen, int]:
    """``streamlit run ENTRY`` from ``root`` on a free loopback port, in its own process group: (process, port)."""
    port = free_port()
    proc = subprocess.Popen([py, "-m", "streamlit", "run", entry, "--server.port", str(port), "--server.headless",
                             "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
                             "--server.fileWatcherType", "none"],
                            cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return proc, port


def wait_healthy(port: int, tries: int = 120) -> bool:
    """Whether the app on ``port`` answered its health check within ``tries`` half-seconds."""
    for _ in range(tries):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return True
        except Exception:
            time.sleep(0.5)
    return False


def stop_app(proc: subprocess.Popen) -> None:
    """Stop the app and everything it started (its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def open_page(p, chromium: str, url: str, height: int = 1000):
    """A headless Chromium page (1400 px wide) of the Playwright ``p`` at ``url``, loaded until the network is idle."""
    b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu",
                                                          "--disable-background-networking"])
    page = b.new_page(viewport={"width": 1400, "height": height})
    page.goto(url, wait_until="networkidle")
    return page


def main_text(page) -> str:
    """The text of the page's main area (not the sidebar)."""
    return page.locator('[data-testid="stMain"]').inner_text()


def wait_for(page, pred, seconds: float) -> bool:
    """Whether ``pred(main text)`` became true within ``seconds`` (a page being redrawn counts as not yet)."""
    t0 = time.time()
    while time.time() - t0 < seconds:
        try:
            if pred(main_text(page)):
                return True
        except Exception:
            pass
        time.sleep(0.25)
    return False
