"""Process-wide resources (``st.cache_resource`` singletons shared by every session): the job manager, the
login throttle, this server's temporary folder (removed however the server stops) and the start-up clean-up
of the runs folder. Nothing here knows about users or pages."""
from __future__ import annotations

import streamlit as st

__all__ = ["job_manager", "login_throttle", "scratch_root", "runs_cleaned"]


@st.cache_resource(show_spinner=False)
def job_manager():
    """The one :class:`core.service.jobs.JobManager` of this server (shared by every session; see app/jobs.py)."""
    from core.service.jobs import JobManager
    return JobManager()


@st.cache_resource(show_spinner=False)
def login_throttle():
    """One :class:`core.users.LoginThrottle` for the whole server: repeated failures slow down every session
    trying that name."""
    from core.users import LoginThrottle
    return LoginThrottle()


@st.cache_resource(show_spinner=False)
def scratch_root(base_dir: str):
    """This server's temporary folder (unsaved runs, large uploads), owner-only, removed when the server stops,
    however it stops: normally, Ctrl-C, SIGTERM, even ``kill -9`` (:func:`_remove_when_this_process_ends`).

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
    _remove_when_this_process_ends(root)
    atexit.register(shutil.rmtree, root, True)     # at once on a normal exit; the watcher covers the rest
    return root


#: the watcher processes started by this process (kept so that they are never garbage-collected as running).
_WATCHERS: list = []

#: the watcher: a tiny interpreter that blocks on a pipe whose only write end this process holds. When this
#: process ends, by any signal or none, the kernel closes that end, the read returns EOF and the folder is
#: removed. It ignores Ctrl-C and SIGTERM (a service manager stopping the whole group must not stop it before
#: the server is gone) and runs in its own session.
_WATCHER = """
import os, shutil, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
fd = int(sys.argv[1])
while True:
    try:
        if not os.read(fd, 64):
            break
    except InterruptedError:
        continue
    except OSError:
        break
shutil.rmtree(sys.argv[2], ignore_errors=True)
"""


def _remove_when_this_process_ends(folder) -> None:
    """Remove ``folder`` when this process ends, whatever ends it.

    ``atexit`` does not run when a signal kills the process: uvicorn (``streamlit run serve.py``, an ``st.App``)
    shuts down gracefully on SIGTERM and then raises the signal again with the default action, which ends the
    process without ``atexit``; ``kill -9`` never runs anything. So a watcher process (:data:`_WATCHER`) holds
    the read end of a pipe and removes the folder once the write end, held only by this process (and any
    process it forks, which may still write there), is closed.
    """
    import os
    import subprocess
    import sys
    read_end, write_end = os.pipe()                 # both non-inheritable: programs this server starts never hold them
    try:
        _WATCHERS.append((subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _WATCHER, str(read_end), str(folder)], pass_fds=(read_end,),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True), write_end))
    except OSError as err:                          # no watcher: atexit and the next server's start remain
        os.close(write_end)
        import warnings
        warnings.warn(f"Could not start the watcher that removes {folder} when the server stops ({err}); it is "
                      "removed at a normal exit, else when the next server starts.", stacklevel=2)
    finally:
        os.close(read_end)


@st.cache_resource(show_spinner=False)
def runs_cleaned(runs_root: str) -> int:
    """Once per server and runs folder (its first use: at start): remove what interrupted saves left there, in
    the runs folder and in each user's ``users/NAME/`` folder (:func:`core.runs.store.remove_partial_runs`: staging
    folders and part files of processes that are no longer running). Returns how many were removed."""
    from pathlib import Path

    from core.runs.store import remove_partial_runs
    root = Path(runs_root)
    n = remove_partial_runs(root)
    users = root / "users"
    if users.is_dir() and not users.is_symlink():
        for folder in sorted(users.iterdir()):
            if folder.is_dir() and not folder.is_symlink():
                n += remove_partial_runs(folder)
    return n
