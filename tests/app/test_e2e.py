"""Headless-Chromium checks (marked e2e): every page (../shared/tools/app_e2e.py), a training that
survives a page change (../shared/tools/app_jobs_e2e.py), one cancelled from the page (cancel_e2e.py),
two users kept apart (../shared/tools/app_users_e2e.py) and names from the data never rendered as
Markdown or HTML (markdown_e2e.py).

Skips with a reason on a user's clone without ../shared or without Chromium; in CI (CI=true)
a missing Chromium is a failure, since .ci/run installs it.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT.parent / "shared" / "tools" / "app_e2e.py"
JOBS_TOOL = ROOT.parent / "shared" / "tools" / "app_jobs_e2e.py"
USERS_TOOL = ROOT.parent / "shared" / "tools" / "app_users_e2e.py"
CANCEL = Path(__file__).with_name("cancel_e2e.py")
MARKDOWN = Path(__file__).with_name("markdown_e2e.py")


def _chromium() -> str:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run must install Debian's chromium")
        pytest.skip("chromium not installed (apt-get install chromium) - browser check skipped")
    return chromium


def _run_shared_tool(tool: Path, args: list, env: dict, timeout: int) -> subprocess.CompletedProcess:
    """Run one of ../shared/tools' browser checks on this app (skipped without the tool or /usr/bin/chromium)."""
    if not tool.exists():
        pytest.skip(f"{tool} not found: the check needs ../shared/tools beside the repo")
    if _chromium() != "/usr/bin/chromium":
        pytest.skip("the shared tool expects chromium at /usr/bin/chromium")
    proc = subprocess.run([sys.executable, str(tool), str(ROOT), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **env))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc


@pytest.mark.e2e
def test_every_page_in_headless_browser(tmp_path):
    if not TOOL.exists():
        pytest.skip(f"{TOOL} not found: the browser check needs ../shared/tools beside the repo")
    chromium = _chromium()
    out = tmp_path / "e2e"
    clicks = [a for p in sorted((ROOT / "app" / "pages").glob("*.py"))
              for label in _clicks(p) for a in ("--click", f"{_title(p)}::{label}")]
    proc = subprocess.run([sys.executable, str(TOOL), str(ROOT), "serve.py", str(out), "--fail-on-error",
                           "--chromium", chromium, "--timeout", "240", *clicks],
                          capture_output=True, text=True, timeout=1200)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    pngs = list(out.glob("*.png"))
    assert len(pngs) >= len(list((ROOT / "app" / "pages").glob("[!_]*.py"))), (pngs, report)


def _title(page: Path) -> str:
    """The nav title of a page as registered in streamlit_app.py."""
    src = (ROOT / "streamlit_app.py").read_text()
    rel = f'"app/pages/{page.name}"'
    line = next((ln for ln in src.splitlines() if rel in ln), "")
    return line.split('title="')[1].split('"')[0] if 'title="' in line else page.stem


def _clicks(page: Path) -> list[str]:
    """Buttons to press on a page: a module-level E2E_CLICKS = [...] list, if the page declares one."""
    for ln in page.read_text().splitlines():
        if ln.startswith("E2E_CLICKS"):
            return json.loads(ln.split("=", 1)[1].strip().replace("'", '"'))
    return []


@pytest.mark.e2e
def test_training_survives_a_page_change(tmp_path):
    """The shared tool: start a full training, open another page, come back, see the leaderboard."""
    proc = _run_shared_tool(JOBS_TOOL, ["streamlit_app.py", sys.executable, "--wait", "300"], timeout=600,
                            env={"CHRONOSCOPE_RUNS_DIR": str(tmp_path / "runs"),
                                 "CHRONOSCOPE_TMP_DIR": str(tmp_path / "tmp"), "OUT": str(tmp_path)})
    assert "leaderboard after a page change: yes" in proc.stdout
    saved = [d for d in (tmp_path / "runs").iterdir() if (d / "config.json").exists()] \
        if (tmp_path / "runs").exists() else []
    assert saved == []                  # not saved unless asked: the run lived in the server's temp folder
    t0 = time.monotonic()                 # the tool stops the server on its way out: give it time to finish
    while list((tmp_path / "tmp").glob("chronoscope-server-*")) and time.monotonic() - t0 < 20:
        time.sleep(0.5)
    assert not list((tmp_path / "tmp").glob("chronoscope-server-*"))      # removed when the server stopped


@pytest.mark.e2e
def test_training_is_cancelled_from_the_page(tmp_path):
    chromium = _chromium()
    env = dict(os.environ, CHRONOSCOPE_RUNS_DIR=str(tmp_path / "runs"))
    proc = subprocess.run([sys.executable, str(CANCEL), str(ROOT), "streamlit_app.py", sys.executable, chromium],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


@pytest.mark.e2e
def test_two_users_stay_isolated(tmp_path):
    """The shared tool: alice trains, bob (another browser context) sees nothing of it; a wrong password is refused."""
    proc = _run_shared_tool(USERS_TOOL, ["streamlit_app.py", sys.executable, tmp_path / "work"], timeout=600,
                            env={"CHRONOSCOPE_TMP_DIR": str(tmp_path / "tmp")})
    assert "isolated" in proc.stdout


@pytest.mark.e2e
def test_names_from_the_data_are_never_markdown_or_html(tmp_path):
    """Markdown-image and link names (file, patients, variables, static, label column): no <img>/<a> to them."""
    chromium = _chromium()
    proc = subprocess.run([sys.executable, str(MARKDOWN), str(ROOT), "streamlit_app.py", sys.executable, chromium,
                           str(tmp_path / "shots")], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, CHRONOSCOPE_TMP_DIR=str(tmp_path / "tmp")))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


COHERENCE_TOOL = ROOT.parent / "shared" / "tools" / "app_coherence_e2e.py"
VIEWS = Path(__file__).with_name("views_e2e.py")


@pytest.mark.e2e
def test_no_page_shows_other_data_and_nothing_starts_unasked(tmp_path):
    """The shared tool: train on the demo, open Explain (no job), Time order's verdict, other data: verdict gone."""
    _run_shared_tool(COHERENCE_TOOL, ["serve.py", sys.executable, "--wait", "500"], timeout=1100,
                            env={"CHRONOSCOPE_RUNS_DIR": str(tmp_path / "runs"),
                                 "CHRONOSCOPE_TMP_DIR": str(tmp_path / "tmp"),
                          "OUT": str(tmp_path / "shots")})


@pytest.mark.e2e
def test_views_follow_the_current_run_and_data(tmp_path):
    """Threshold panel after a second training, Predict after a page change, Explain in a new session, How RNNs
    work after a data change (views_e2e.py)."""
    chromium = _chromium()
    env = dict(os.environ, CHRONOSCOPE_RUNS_DIR=str(tmp_path / "runs"), CHRONOSCOPE_TMP_DIR=str(tmp_path / "tmp"))
    proc = subprocess.run([sys.executable, str(VIEWS), str(ROOT), "streamlit_app.py", sys.executable, chromium,
                           str(tmp_path / "shots")], capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
