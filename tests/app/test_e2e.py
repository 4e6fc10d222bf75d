"""One headless-Chromium run over every page with ../shared/tools/app_e2e.py (marked e2e).

Skips with a reason on a user's clone without ../shared or without Chromium; in CI (CI=true)
a missing Chromium is a failure, since .ci/run installs it.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT.parent / "shared" / "tools" / "app_e2e.py"


@pytest.mark.e2e
def test_every_page_in_headless_browser(tmp_path):
    if not TOOL.exists():
        pytest.skip(f"{TOOL} not found: the browser check needs ../shared/tools beside the repo")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run must install Debian's chromium")
        pytest.skip("chromium not installed (apt-get install chromium) - browser check skipped")
    out = tmp_path / "e2e"
    clicks = [a for p in sorted((ROOT / "app" / "pages").glob("*.py"))
              for label in _clicks(p) for a in ("--click", f"{_title(p)}::{label}")]
    proc = subprocess.run([sys.executable, str(TOOL), str(ROOT), "streamlit_app.py", str(out), "--fail-on-error",
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
