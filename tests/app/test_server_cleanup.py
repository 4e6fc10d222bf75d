"""The server's side of "nothing half-written is kept" (issue 21, item 5): stale staging folders are removed when
it starts, and its scratch folder (unsaved runs: patient ids) goes with it, whatever stops it."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers.runs import dead_pid

ROOT = Path(__file__).resolve().parents[2]


def _stage(root: Path, name: str, pid: int) -> Path:
    """A staging folder as a killed save leaves it (config.json written, no manifest)."""
    staging = root / f".{name}.partial-{pid}"
    staging.mkdir(parents=True)
    (staging / "config.json").write_text("{}")
    return staging


def test_the_server_removes_stale_staging_when_it_starts(tmp_path):
    """app.resources.runs_cleaned (called by the first app.workspace.runs_dir of a server): the runs folder and
    every user's folder; a save under way (its process alive) is left alone."""
    from app.resources import runs_cleaned
    root = tmp_path / "runs"
    a = _stage(root, "killed", dead_pid())
    b = _stage(root / "users" / "alice", "killed", dead_pid())
    live = _stage(root / "users" / "bob", "saving", os.getpid())
    assert runs_cleaned(str(root)) == 2
    assert not a.exists() and not b.exists() and live.exists()


_SERVER = textwrap.dedent("""
    import signal, sys, time
    # a server answers Ctrl-C (Streamlit installs its handler); a process started in the background by a
    # non-interactive shell inherits SIGINT ignored, so say it here, as the server does
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from app.resources import scratch_root
    root = scratch_root(sys.argv[1])
    (root / "alice").mkdir()
    (root / "alice" / "unsaved-run-ids.csv").write_text("patient_id\\np001\\n")
    print(root, flush=True)
    time.sleep(120)
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_the_scratch_folder_goes_with_the_server_whatever_stops_it(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = proc.stdout.readline().strip()
        assert line, proc.stderr.read()
        root = Path(line)
        assert root.is_dir() and root.name == f"chronoscope-server-{proc.pid}"
        proc.send_signal(sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while root.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not root.exists(), f"{root} left after {sig.name}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
