#!/usr/bin/env python3
"""Headless-browser check that names from the data are never rendered as Markdown or HTML.

Starts a beacon server (it records every request) and the app, uploads through the Data page a file
named like a Markdown image, whose patient ids, variable and static names and labels column are
Markdown images and links pointing at the beacon, loads it, then visits Data, Cohort and Patient
timeline. Exit 0 when no element of any page has a ``src`` or ``href`` pointing at the beacon and
the beacon got no request; 1 otherwise; 2 when setup fails.
Usage: markdown_e2e.py ROOT ENTRY PYTHON CHROMIUM OUTDIR
"""
import http.server
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # a script: import tests.helpers
from tests.helpers.browser import free_port, open_page, start_app, stop_app, wait_healthy  # noqa: E402

root, entry, py, chromium, out = sys.argv[1:6]
os.makedirs(out, exist_ok=True)


hits: list[str] = []


class Beacon(http.server.BaseHTTPRequestHandler):
    def do_GET(self):            # noqa: N802 (http.server's name)
        hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


beacon_port = free_port()
beacon = http.server.ThreadingHTTPServer(("127.0.0.1", beacon_port), Beacon)
threading.Thread(target=beacon.serve_forever, daemon=True).start()
B = f"http://127.0.0.1:{beacon_port}"

rows = ["patient_id,time,variable,value"]
for i in range(30):
    pid = f"[p{i}]({B}/pid{i})" if i % 2 else f"![p{i}]({B}/pid{i}.png)"
    rows.append(f'"{pid}",0,"![s]({B}/static.png)",{i % 3}')           # a static attribute (first record only)
    for h in range(4):
        rows.append(f'"{pid}",{h},"![v]({B}/var.png) <img src={B}/html.png>",{70 + i + h}')
        rows.append(f'"{pid}",{h},HR,{80 + h}')
events = ("\n".join(rows) + "\n").encode()
labels = (f"patient_id,\"[t]({B}/t)\"\n" + "".join(
    f'"{(f"[p{i}]({B}/pid{i})" if i % 2 else f"![p{i}]({B}/pid{i}.png)")}",{i % 2}\n' for i in range(30))).encode()
events_name = f"![x]({B}/file.png).csv"

srv, port = start_app(root, entry, py)


def idle(page, seconds=120):
    t0 = time.time()
    time.sleep(1)
    while time.time() - t0 < seconds:
        if not page.locator('[data-testid="stStatusWidgetRunningIcon"]').count():
            time.sleep(1.5)
            return
        time.sleep(0.3)


def pointing_at_beacon(page) -> list[str]:
    return page.evaluate("""(b) => Array.from(document.querySelectorAll('*')).flatMap(e =>
        ['src', 'href', 'xlink:href'].map(a => e.getAttribute(a)).filter(v => v && v.includes(b))
            .map(v => e.tagName + ' ' + v))""", f"127.0.0.1:{beacon_port}")


try:
    if not wait_healthy(port):
        print("server did not start")
        sys.exit(2)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        page = open_page(p, chromium, f"http://127.0.0.1:{port}/", height=1600)
        b = page.context.browser
        idle(page)
        page.get_by_text("Upload files").click()
        idle(page)
        page.locator('input[type="file"]').nth(0).set_input_files(
            [{"name": events_name, "mimeType": "text/csv", "buffer": events}])
        idle(page)
        page.locator('input[type="file"]').nth(1).set_input_files(
            [{"name": "labels.csv", "mimeType": "text/csv", "buffer": labels}])
        idle(page)
        page.get_by_role("button", name="Load and validate").click()
        idle(page)
        found = {}
        for nav in ("Data", "Cohort", "Patient timeline"):
            page.locator('[data-testid="stSidebarNav"] a', has_text=nav).first.click()
            idle(page)
            if nav != "Data":                   # every chart drawn (their labels hold the names too)
                t0 = time.time()
                while time.time() - t0 < 60 and not page.locator(".js-plotly-plot").count():
                    time.sleep(0.5)
                time.sleep(2)
            page.screenshot(path=os.path.join(out, f"{nav.replace(' ', '_')}.png"), full_page=True)
            found[nav] = pointing_at_beacon(page)
        shown = page.locator('[data-testid="stMain"]').inner_text()
        b.close()
    time.sleep(1)
    if any(found.values()) or hits:
        print(f"user text became Markdown/HTML: elements {found}, beacon requests {hits}")
        sys.exit(1)
    if "pid0.png" not in shown or "static.png" not in shown:
        print("the uploaded names were not shown as text (the upload did not load?)")
        sys.exit(1)
    print("no image or link from the data: 0 elements point at the beacon, 0 requests")
    sys.exit(0)
finally:
    beacon.shutdown()
    stop_app(srv)
