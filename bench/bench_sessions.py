"""Load test on loopback: N concurrent browser sessions on one server; prints numbers, saves results_sessions.json.

Starts ``streamlit run serve.py`` (runs in a temporary folder), opens N sessions at once in headless
Chromium (one browser context each, as N people would), and in each: the Data page on the demo, the
Patient timeline (then the next patient), and the Compare page. Two of the sessions also press
"Train and compare" (quick preset, all models) and wait for their leaderboard. Reports every error
(exception boxes, st.error, page errors, timeouts), the time of each page visit (p50, p95, max), the
trainings' wall time, and the server's memory (RSS of its process tree) before the sessions, at the
peak, and after.

    .venv/bin/python bench/bench_sessions.py [--sessions 10] [--trainers 2] [--chromium /usr/bin/chromium]

The browsers run on the same machine as the server, so on a small machine the page times measure the
machine (N Chromium renderers plus the server and its training workers), not the server alone: the
server's own script time for a page is about 0.1 s (streamlit AppTest).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (MB), from /proc."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for ln in (Path("/proc") / str(p) / "status").read_text().splitlines():
                if ln.startswith("VmRSS:"):
                    total += int(ln.split()[1])
        except OSError:
            pass
        todo += children.get(p, [])
    return total / 1024


async def idle(page, seconds: float = 120) -> None:
    t0 = time.monotonic()
    await asyncio.sleep(0.5)
    while time.monotonic() - t0 < seconds:
        running = await page.locator('[data-testid="stStatusWidgetRunningIcon"]').count()
        state = await page.locator('[data-testid="stApp"]').get_attribute("data-test-script-state")
        if not running and state != "running":
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"page still running after {seconds:.0f} s")


async def errors(page) -> list[str]:
    out = []
    for sel in ('[data-testid="stException"]', '[data-testid="stAlertContentError"]'):
        loc = page.locator(sel)
        for i in range(await loc.count()):
            out.append((await loc.nth(i).inner_text())[:200])
    return out


async def session(browser, url: str, k: int, train: bool, times: list, problems: list, trainings: list) -> None:
    ctx = await browser.new_context(viewport={"width": 1300, "height": 900})
    ctx.set_default_timeout(120_000)      # a person waits up to 2 minutes for a page; slower counts as an error
    page = await ctx.new_page()
    page.on("pageerror", lambda e: problems.append(f"session {k}: page error {e}"))

    async def visit(label, action):
        t0 = time.monotonic()
        try:
            await action()
            await idle(page)
        except Exception as err:            # a timeout or a missing element is a failure of the app under load
            problems.append(f"session {k}: {label}: {type(err).__name__}: {str(err)[:150]}")
            return
        times.append((label, time.monotonic() - t0))
        problems.extend(f"session {k}: {label}: {e}" for e in await errors(page))

    async def nav(title):
        await page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()

    await visit("data (demo)", lambda: page.goto(url, wait_until="domcontentloaded"))
    await visit("timeline", lambda: nav("Patient timeline"))
    await visit("timeline next", lambda: page.get_by_role("button", name="Next").first.click())
    await visit("compare", lambda: nav("Compare models"))
    if train:
        t0 = time.monotonic()
        await page.get_by_role("button", name="Train and compare").first.click()
        while time.monotonic() - t0 < 600:
            if await page.get_by_role("heading", name="Leaderboard (test patients)").count():
                break
            await asyncio.sleep(1)
        else:
            problems.append(f"session {k}: no leaderboard 600 s after Train and compare")
        trainings.append(time.monotonic() - t0)
        problems.extend(f"session {k}: training: {e}" for e in await errors(page))
    await ctx.close()


async def run(url: str, n: int, trainers: int, chromium: str, peak: list, srv_pid: int) -> dict:
    from playwright.async_api import async_playwright
    times: list = []
    problems: list = []
    trainings: list = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak.append(tree_rss_mb(srv_pid))
            time.sleep(0.5)

    threading.Thread(target=sample, daemon=True).start()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        t0 = time.monotonic()
        await asyncio.gather(*(session(browser, url, k, k < trainers, times, problems, trainings) for k in range(n)))
        wall = time.monotonic() - t0
        await browser.close()
    stop.set()
    return {"times": times, "problems": problems, "trainings": trainings, "wall_s": wall}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--trainers", type=int, default=2)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    tmp = tempfile.mkdtemp(prefix="bench-sessions-")
    env = dict(os.environ, CHRONOSCOPE_RUNS_DIR=f"{tmp}/runs", CHRONOSCOPE_TMP_DIR=f"{tmp}/tmp")
    srv = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "serve.py", "--server.port", str(port),
                            "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "_stcore/health", timeout=1)
                break
            except Exception:
                time.sleep(0.5)
        # one warm-up visit (the demo is read and validated once per server), then measure
        urllib.request.urlopen(url, timeout=10).read()
        before = tree_rss_mb(srv.pid)
        peak: list = []
        res = asyncio.run(run(url, a.sessions, a.trainers, a.chromium, peak, srv.pid))
        time.sleep(3)
        after = tree_rss_mb(srv.pid)
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
    t = sorted(v for _, v in res["times"])

    def q(p):
        return t[min(len(t) - 1, int(round(p * (len(t) - 1))))] if t else float("nan")

    out = {"sessions": a.sessions, "trainers": a.trainers, "page_visits": len(t), "errors": len(res["problems"]),
           "problems": res["problems"][:20], "page_s_p50": round(q(0.5), 2), "page_s_p95": round(q(0.95), 2),
           "page_s_max": round(q(1.0), 2), "page_visits_over_10s": sum(v > 10 for v in t),
           "training_s": [round(x, 1) for x in res["trainings"]],
           "wall_s": round(res["wall_s"], 1), "server_mb_before": round(before), "server_mb_peak": round(max(peak or [0])),
           "server_mb_after": round(after), "cpus": os.cpu_count()}
    by_page: dict = {}
    for label, v in res["times"]:
        by_page.setdefault(label, []).append(v)
    out["page_s_mean_by_page"] = {k: round(sum(v) / len(v), 2) for k, v in by_page.items()}
    print(json.dumps(out, indent=2))
    (ROOT / "bench" / "results_sessions.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0 if not res["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
