"""Process-wide resources (``st.cache_resource`` singletons shared by every session): the job manager, the
login throttle and this server's temporary folder. Nothing here knows about users or pages."""
from __future__ import annotations

import streamlit as st

__all__ = ["job_manager", "login_throttle", "scratch_root"]


@st.cache_resource(show_spinner=False)
def job_manager():
    """The one :class:`core.jobs.JobManager` of this server (shared by every session; see app/jobs.py)."""
    from core.jobs import JobManager
    return JobManager()


@st.cache_resource(show_spinner=False)
def login_throttle():
    """One :class:`core.users.LoginThrottle` for the whole server: repeated failures slow down every session
    trying that name."""
    from core.users import LoginThrottle
    return LoginThrottle()


@st.cache_resource(show_spinner=False)
def scratch_root(base_dir: str):
    """This server's temporary folder (unsaved runs, large uploads), owner-only, removed when the server stops.

    ``base_dir`` / ``chronoscope-server-<pid>``. Folders of servers that are no longer running are removed when a
    server starts.
    """
    import atexit
    import os
    import shutil
    from pathlib import Path
    base = Path(base_dir)
    base.mkdir(parents=True, exist_ok=True)
    for old in base.glob("chronoscope-server-*"):
        try:
            pid = int(old.name.rsplit("-", 1)[1])
            os.kill(pid, 0)                        # still running: leave it
        except (ValueError, ProcessLookupError):
            shutil.rmtree(old, ignore_errors=True)
        except PermissionError:
            pass
    root = base / f"chronoscope-server-{os.getpid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    atexit.register(shutil.rmtree, root, True)
    return root
