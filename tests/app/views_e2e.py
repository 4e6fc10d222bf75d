#!/usr/bin/env python3
"""Headless-browser checks that every view follows the current run and data (issue 19).

Starts the app (runs saved under $CHRONOSCOPE_RUNS_DIR) and, as a user would:
  1. trains twice on the demo (Compare, test preset, "Save run", seeds 0 and 1): the threshold slider shows the
     SECOND run's threshold (config.json of the newest run), not the first's;
  2. scores the demo patients on Predict, opens another page, comes back: the result is still there;
  3. in a NEW browser session, Explain shows the saved run as the current run (no "No run on this data");
  4. uploads another small cohort, opens How RNNs work: no error, no exception.
Exit 0 when every check holds, 1 when one fails (reason printed, screenshots in OUT), 2 on setup failure.
Usage: views_e2e.py ROOT ENTRY PYTHON CHROMIUM OUT
"""
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # a script: import tests.helpers
from tests.helpers.browser import (main_text as text, open_page, start_app, stop_app, wait_for,  # noqa: E402
                                   wait_healthy)

root, entry, py, chromium, out = sys.argv[1:6]
runs = Path(os.environ["CHRONOSCOPE_RUNS_DIR"])
os.makedirs(out, exist_ok=True)
srv, port = start_app(root, entry, py)
fails = []


def settle(page, s: float = 2.0) -> None:
    t0 = time.time()
    while time.time() - t0 < 120 and page.locator('[data-testid="stStatusWidgetRunningIcon"]').count():
        time.sleep(0.5)
    time.sleep(s)


def go(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    settle(page)


def pick(page, label: str, option: str) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    time.sleep(0.7)
    page.locator('[role="option"]').filter(has_text=re.compile(f"^{option}$")).first.click()
    time.sleep(0.7)


def errors(page) -> list[str]:
    found = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    return [found.nth(i).inner_text()[:200] for i in range(found.count())]


def train(page, seed: int) -> None:
    go(page, "Compare models")
    pick(page, "Preset", "test")
    seed_box = page.locator('[data-testid="stNumberInput"]').filter(has_text="Seed").locator("input").first
    seed_box.fill(str(seed))
    seed_box.press("Tab")
    box = page.locator('[data-testid="stCheckbox"]').filter(has_text="Save run").first
    if not box.locator("input").is_checked():
        box.click()
    before = {d.name for d in runs.iterdir()} if runs.exists() else set()
    page.get_by_role("button", name="Train and compare").first.click()

    def new_run_shown(t: str) -> bool:
        new = [d.name for d in runs.iterdir() if d.name not in before and (d / "manifest.json").exists()] \
            if runs.exists() else []
        return bool(new) and "Decision threshold" in t and new[0] in page.locator('[data-testid="stSidebar"]').inner_text()
    if not wait_for(page, new_run_shown, 300):
        page.screenshot(path=os.path.join(out, f"train_{seed}.png"), full_page=True)
        raise SystemExit(f"no leaderboard after training with seed {seed}")
    settle(page)


try:
    if not wait_healthy(port):
        print("server did not start")
        sys.exit(2)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        page = open_page(p, chromium, f"http://127.0.0.1:{port}/")
        b = page.context.browser
        settle(page)
        # 1. two trainings: the threshold panel follows the second run
        train(page, 0)
        train(page, 1)
        newest = max((d for d in runs.iterdir() if (d / "manifest.json").exists()),
                     key=lambda d: json.loads((d / "config.json").read_text())["created"] + d.name)
        config = json.loads((newest / "config.json").read_text())
        first_model = config["models"][0]
        want = round(float(config["thresholds"][first_model]), 3)
        thumb = page.locator('[data-testid="stSliderThumbValue"]').first.inner_text()
        page.screenshot(path=os.path.join(out, "1_threshold.png"), full_page=True)
        if abs(float(thumb) - want) > 0.003:
            fails.append(f"threshold panel shows {thumb}, the current run's threshold of {first_model} is {want}")
        if newest.name not in page.locator('[data-testid="stSidebar"]').inner_text():
            fails.append(f"the sidebar does not name the current run {newest.name}")
        # 2. Predict's result survives a page change
        go(page, "Predict")
        page.get_by_role("button", name="Score the demo patients").first.click()
        if not wait_for(page, lambda t: "Flagged by" in t, 180):
            page.screenshot(path=os.path.join(out, "2_predict.png"), full_page=True)
            raise SystemExit("Predict gave no result")
        go(page, "Cohort")
        go(page, "Predict")
        ok = wait_for(page, lambda t: "Flagged by" in t, 20)
        page.screenshot(path=os.path.join(out, "2_predict_back.png"), full_page=True)
        if not ok:
            fails.append("Predict's result was gone after a page change")
        # 3. a new browser session: the saved run is the current run on Explain
        other = b.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        other.goto(f"http://127.0.0.1:{port}/explain", wait_until="networkidle")
        settle(other, 4)
        body = text(other)
        other.screenshot(path=os.path.join(out, "3_explain_new_session.png"), full_page=True)
        if "No run on this data" in body or newest.name not in body:
            fails.append("a saved run does not appear on Explain in a new browser session")
        # 4. other data, then How RNNs work: no error
        tmp = tempfile.mkdtemp(prefix="other-")
        ev, lab = os.path.join(tmp, "other_events.csv"), os.path.join(tmp, "other_labels.csv")
        with open(ev, "w") as f:
            f.write("patient_id,time,variable,value\n")
            for q in range(200):
                for t in range(24):
                    f.write(f"Q{q},{t}.25,HR,{60 + (q * 13 + t * 7) % 50}\nQ{q},{t}.25,MAP,{65 + (q * 5 + t * 3) % 30}\n")
        with open(lab, "w") as f:
            f.write("patient_id,outcome\n" + "".join(f"Q{q},{int(q % 3 == 0)}\n" for q in range(200)))
        go(page, "Data")
        page.get_by_text("Upload files", exact=True).first.click()
        settle(page)
        page.locator('input[type="file"]').nth(0).set_input_files(ev)
        settle(page, 3)
        page.locator('input[type="file"]').nth(1).set_input_files(lab)
        settle(page, 3)
        page.get_by_role("button", name=re.compile("load and validate", re.I)).first.click()
        settle(page, 4)
        go(page, "How RNNs work")
        settle(page, 3)
        page.screenshot(path=os.path.join(out, "4_models_other_data.png"), full_page=True)
        bad = errors(page)
        if bad:
            fails.append(f"How RNNs work after a data change shows an error: {bad[0]!r}")
        if newest.name in page.locator('[data-testid="stSidebar"]').inner_text():
            fails.append("the sidebar still names the demo's run as current after other data were loaded")
        b.close()
    print("; ".join(fails) if fails else "views follow the current run and data")
    sys.exit(1 if fails else 0)
finally:
    stop_app(srv)
