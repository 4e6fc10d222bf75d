"""``streamlit run tests/app/_session_app.py``: writes, every 0.1 s, what :func:`app.state.session_gone` of the
session that ran it says (``SESSION_PROBE_FILE``), from a thread, as the job manager asks it."""
import os
import threading
import time
from pathlib import Path

import streamlit as st

from app.state import session_gone

if "probe" not in st.session_state:
    check, probe = session_gone(), Path(os.environ["SESSION_PROBE_FILE"])
    st.session_state["probe"] = True

    def _watch() -> None:
        while True:
            probe.write_text(str(check()))
            time.sleep(0.1)
    threading.Thread(target=_watch, daemon=True).start()
st.write("watching")
