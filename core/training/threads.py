"""The one thread rule for every library the models use: OpenMP, BLAS, joblib and torch.

Every fit, prediction and explanation runs inside :func:`limit_threads`, which caps at one number

* OpenMP and BLAS thread pools (``threadpoolctl``: gradient boosting, NumPy/SciPy linear algebra),
* joblib's default backend and ``n_jobs`` (threads; the random forest is built with ``n_jobs=None``
  so it follows it, and so do the calibrated SVM's folds),
* torch's intra-op threads,

and restores the caller's settings afterwards. The number comes from :func:`thread_count`:
``CHRONOSCOPE_THREADS`` when set (the test suite pins 1, so results do not depend on the load of
the machine), otherwise the cores not already busy (1-minute load average), at most two.

Why at most two and why load-aware: OpenMP code synchronises its threads many times per fit; on
an oversubscribed box a thread that is not scheduled stalls the others, and we measured fits 10-40x
slower with two threads than with one on a busy 2-core machine. More cores are used by running
independent fits side by side (``--backend ray``), not by giving one fit more threads.

Nested calls inherit the outer limit: a job or a Ray task fixes the number once, and every fit in
it uses that number (so the same seeds give the same numbers on both backends).
"""
from __future__ import annotations

import contextlib
import contextvars
import os

from core.settings import Settings, read_settings

__all__ = ["cpu_count", "thread_count", "limit_threads", "current_limit", "THREADS_ENV", "MAX_THREADS"]

#: environment variable that pins the thread count of every fit (an integer >= 1).
THREADS_ENV = Settings.threads.env
#: the most threads one fit gets unless pinned higher.
MAX_THREADS = 2

_current: contextvars.ContextVar[int | None] = contextvars.ContextVar("chronoscope_threads", default=None)


def cpu_count() -> int:
    """CPUs this process may run on (its affinity set; all CPUs where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):      # not Linux
        return os.cpu_count() or 1


def current_limit() -> int | None:
    """The limit of the innermost :func:`limit_threads` around the caller (``None`` outside one)."""
    return _current.get()


def thread_count(max_threads: int = MAX_THREADS) -> int:
    """Threads one fit should use now.

    Inside :func:`limit_threads` the enclosing limit (at most ``max_threads``); else
    ``CHRONOSCOPE_THREADS`` when set; else the cores not already busy, at most ``max_threads``.
    """
    inner = _current.get()
    if inner is not None:
        return max(1, min(inner, max_threads))
    fixed = read_settings().threads
    if fixed is not None:
        return fixed
    cpus = cpu_count()
    try:
        busy = os.getloadavg()[0]
    except (OSError, AttributeError):      # no load average on this platform
        return max(1, min(cpus, max_threads))
    return int(max(1, min(cpus, max_threads, round(cpus - busy + 1))))


@contextlib.contextmanager
def limit_threads(n: int | None = None):
    """Cap OpenMP, BLAS, joblib and torch at ``n`` threads (default :func:`thread_count`) inside the block.

    Yields the number used. Settings are restored on exit, also after an exception.

    Examples
    --------
    >>> with limit_threads(1):                 # doctest: +SKIP
    ...     model.fit(X, y)
    """
    import joblib
    import torch
    from threadpoolctl import threadpool_limits
    n = int(n) if n is not None else thread_count()
    if n < 1:
        raise ValueError(f"limit_threads needs at least 1 thread; got {n}. Set {THREADS_ENV}=1 or more.")
    token = _current.set(n)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        # backend="threading" too: with n_jobs alone, joblib.effective_n_jobs(None) stays 1 and the forest
        # (n_jobs=None) ran on one thread (measured: 3.9 s instead of 2.1 s for 100 trees on set A)
        with threadpool_limits(limits=n), joblib.parallel_config(backend="threading", n_jobs=n):
            yield n
    finally:
        torch.set_num_threads(before)
        _current.reset(token)
