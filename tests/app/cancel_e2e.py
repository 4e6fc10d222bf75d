#!/usr/bin/env python3
"""Headless-browser check that a training can be cancelled from the page and leaves no run.

Starts the app (runs saved under $CHRONOSCOPE_RUNS_DIR), opens Compare on the demo data, chooses the
full preset, presses "Train and compare", waits until the job runs, presses "Cancel", and waits for
the page to say the training was cancelled. Exit 0 when it does within 10 s of the click and no run
folder was written, 1 otherwise, 2 when setup fails. Usage: cancel_e2e.py ROOT ENTRY PYTHON CHROMIUM
"""
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # a script: import tests.helpers
from tests.helpers.browser import open_page, start_app, stop_app, wait_for, wait_healthy  # noqa: E402

root, entry, py, chromium = sys.argv[1:5]
runs = Path(os.environ["CHRONOSCOPE_RUNS_DIR"])
srv, port = start_app(root, entry, py)


try:
    if not wait_healthy(port):
        print("server did not start")
        sys.exit(2)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        page = open_page(p, chromium, f"http://127.0.0.1:{port}/compare")
        if not wait_for(page, lambda t: "Train and compare" in t, 60):
            print("no Compare page")
            sys.exit(1)
        page.locator('[data-testid="stSelectbox"]').filter(has_text="Preset").first.click()
        time.sleep(1)
        page.locator('[role="option"]').filter(has_text="full").first.click()
        time.sleep(1)
        page.get_by_role("button", name="Train and compare").first.click()
        if not wait_for(page, lambda t: "running for" in t, 60):
            page.screenshot(path=str(runs.parent / "cancel_e2e.png"), full_page=True)
            print("the training never showed as running")
            sys.exit(1)
        time.sleep(2)
        page.get_by_role("button", name="Cancel").first.click()
        t0 = time.time()
        ok = wait_for(page, lambda t: "cancelled after" in t and "Nothing was saved" in t, 10)
        page.screenshot(path=str(runs.parent / "cancel_e2e.png"), full_page=True)
        if not ok:
            print("the page did not report the cancellation within 10 s")
            sys.exit(1)
        left = [d.name for d in runs.iterdir()] if runs.exists() else []
        if left:
            print(f"a cancelled training left files in the runs folder: {left}")
            sys.exit(1)
        print(f"cancelled: the page said so {time.time() - t0:.1f} s after the click; no run folder written")
        sys.exit(0)
finally:
    stop_app(srv)
