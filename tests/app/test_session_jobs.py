"""app.state.session_gone against a real server: False while the browser's websocket is connected, True once it
has closed (what the job manager's ``cancel_if`` asks, from its own thread)."""
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.browser import start_app, stop_app, wait_healthy

ROOT = Path(__file__).resolve().parents[2]


def _says(probe: Path, want: str, seconds: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if probe.exists() and probe.read_text() == want:
            return True
        time.sleep(0.1)
    return False


def test_session_gone_turns_true_when_the_browser_goes(tmp_path, monkeypatch):
    pytest.importorskip("websockets")
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect
    probe = tmp_path / "probe"
    monkeypatch.setenv("SESSION_PROBE_FILE", str(probe))            # the server inherits the environment
    proc, port = start_app(str(ROOT), "tests/app/_session_app.py", sys.executable)
    try:
        assert wait_healthy(port, 80), "the test server did not start"
        with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                     origin=f"http://127.0.0.1:{port}") as ws:
            msg = BackMsg()
            msg.rerun_script.SetInParent()
            ws.send(msg.SerializeToString())
            while True:                                             # the script ran to its end
                fwd = ForwardMsg()
                fwd.ParseFromString(ws.recv(timeout=60))
                if fwd.WhichOneof("type") == "script_finished":
                    break
            assert _says(probe, "False", 5), "a connected session must count as present"
            time.sleep(0.5)
            assert probe.read_text() == "False"
        assert _says(probe, "True", 5), "the closed session still counts as present"
    finally:
        stop_app(proc)
