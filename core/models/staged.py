"""Progress of one fit that never goes silent: labelled messages, a heartbeat, a random forest grown in stages.

* :class:`FitProgress` is the progress callback of one fit (or the prediction after it). It is thread-safe
  (one lock), monotone (the fraction never goes backwards) and it sends every message as a
  :class:`FitMessage`: the text ``"LABEL: detail"`` as ever, plus which fit it is about, so a job can say
  which fits are running, for how long and what each last said (:class:`core.service.jobs.FitStatus`).
* :func:`heartbeat` is a context manager: while a fit or a prediction runs, a daemon thread reports
  ``"fitting, 12 s"`` (or ``"scoring validation and test patients, 12 s"``) whenever nothing was reported
  for ``interval`` seconds (default :data:`HEARTBEAT_S`), never after the block has ended, and never
  raising into the fit. The long loops of scikit-learn (libsvm included), scipy and torch release
  Python's global lock, so the thread gets to run.
* :func:`fit_in_stages` grows a :class:`~sklearn.ensemble.RandomForestClassifier` tree batch by tree batch
  with ``warm_start`` (``"trees 40/100"``, a batch about every 5 s, at most ~20 batches), and fits every
  other model as it is. The forest is the one a plain fit gives: the same trees, node for node, so the
  same ``predict_proba`` (scikit-learn 1.9.1, checked in ``tests/core/models/test_staged.py``; with ``n_jobs``
  above 1 scikit-learn's own ``predict_proba`` adds the trees in thread order, so two calls on the *same*
  forest can differ in the last bit, staged or not). It keeps its class, its ``warm_start`` and its tree
  count, so it saves and reloads as before. Gradient boosting
  (:class:`~sklearn.ensemble.HistGradientBoostingClassifier`) grown by raising ``max_iter`` with
  ``warm_start`` is the same model too (without early stopping; with it, growth stops at another round),
  but each ``fit`` call bins the training data again: about a fifth of a quick-preset fit of 40,000 rows
  x 150 features, per stage. So it is not staged; like a model inside a ``Pipeline`` or a
  ``CalibratedClassifierCV`` (the SVM), it gets the heartbeat.

Nothing here is used when nobody listens: :func:`core.training.protocol.fit_model` without a ``progress`` is one
plain ``fit``.
"""
from __future__ import annotations

import math
import numbers
import threading
import time
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

__all__ = ["FitMessage", "FitPlan", "FitProgress", "heartbeat", "fit_in_stages", "stage_plan", "HEARTBEAT_S",
           "STAGE_S"]

#: seconds without a report after which the heartbeat reports (a fit is never silent for longer).
HEARTBEAT_S = 5.0
#: seconds of work per stage that :func:`fit_in_stages` aims at.
STAGE_S = 5.0
#: at most about this many stages per staged fit (each stage checks the training data again).
_MAX_STAGES = 20


class FitMessage(str):
    """A progress message about one fit: the text as every progress callback gets it, and which fit it is.

    Parameters
    ----------
    text : str
        ``"LABEL: detail"`` (``"fold 2/5: rf: trees 40/100"``), or ``detail`` when the fit has no label.
    key : str
        Identifies the fit among those of one analysis (``""`` when unknown).
    label, title : str
        The fit's label in messages (``"fold 2/5: rf"``) and for people (``"fold 2/5: random forest"``).
    detail : str
        The text without the label (``"trees 40/100"``).
    fit_fraction : float
        How far this fit is, in [0, 1].
    state : {"running", "done"}
    heartbeat : bool
        True for :func:`heartbeat`'s "still working" messages (they say nothing new about the fit).
    """

    def __new__(cls, text: str, *, key: str = "", label: str = "", title: str = "", detail: str = "",
                fit_fraction: float = 0.0, state: str = "running", heartbeat: bool = False) -> "FitMessage":
        self = super().__new__(cls, text)
        self.key, self.label, self.title, self.detail = key, label, title, detail
        self.fit_fraction, self.state, self.heartbeat = float(fit_fraction), state, bool(heartbeat)
        return self


class FitPlan(str):
    """A progress message that also announces the fits about to run: ``fits`` is ``((key, title), ...)``."""

    def __new__(cls, text: str, fits: tuple = ()) -> "FitPlan":
        self = super().__new__(cls, text)
        self.fits = tuple((str(k), str(t)) for k, t in fits)
        return self


class FitProgress:
    """The progress callback of one fit: ``progress(detail, fraction)`` forwards a :class:`FitMessage`.

    Calls from several threads (the fit, its heartbeat) are serialised by one lock, so the callback it
    wraps is never called twice at once. The fraction forwarded never goes backwards; with
    :meth:`within` the fit's own fractions fill a part of it (fitting 0-0.9, scoring 0.9-1).

    Parameters
    ----------
    progress : callable(message, fraction)
        Where the messages go (a job's pipe, a tqdm bar, a Ray inbox).
    label, key, title : str, optional
        As in :class:`FitMessage`; ``title`` defaults to ``label``.

    Examples
    --------
    >>> seen = []
    >>> report = FitProgress(lambda m, f: seen.append((str(m), f)), label="rf", key="1.0", title="random forest")
    >>> report("trees 40/100", 0.4); report("trees 20/100", 0.2)
    >>> seen
    [('rf: trees 40/100', 0.4), ('rf: trees 20/100', 0.4)]
    """

    def __init__(self, progress: Callable[[str, float], None], *, label: str = "", key: str = "",
                 title: str = "") -> None:
        self._progress = progress
        self.label, self.key, self.title = label, key, title or label
        self._lock = threading.RLock()
        self._span = (0.0, 1.0)
        self.fraction = 0.0
        self._last = time.monotonic()

    def within(self, lo: float, hi: float) -> "FitProgress":
        """From now on a fraction ``f`` of the caller means ``lo + (hi - lo) * f`` of the fit; returns ``self``."""
        with self._lock:
            self._span = (float(lo), float(hi))
        return self

    def __call__(self, message: str, fraction: float) -> None:
        self._send(str(message), fraction, "running", False)

    def finish(self, detail: str) -> None:
        """The fit's last message (fraction 1, state ``"done"``)."""
        with self._lock:
            self._span = (0.0, 1.0)
            self._send(detail, 1.0, "done", False)

    def quiet_seconds(self) -> float:
        """Seconds since the last message."""
        return time.monotonic() - self._last

    def beat(self, detail: str, *, quiet_s: float = 0.0, stopped: threading.Event | None = None) -> bool:
        """A heartbeat message at the current fraction, if nothing was sent for ``quiet_s`` seconds and
        ``stopped`` is not set (checked under the lock, so none is sent once it is set); True when sent."""
        with self._lock:
            if (stopped is not None and stopped.is_set()) or self.quiet_seconds() < quiet_s:
                return False
            self._send(detail, None, "running", True)
            return True

    def _send(self, detail: str, fraction: float | None, state: str, beat: bool) -> None:
        with self._lock:
            if fraction is not None:
                f = float(fraction)
                f = min(max(f, 0.0), 1.0) if math.isfinite(f) else 0.0
                lo, hi = self._span
                self.fraction = max(self.fraction, lo + (hi - lo) * f)
            self._last = time.monotonic()
            text = f"{self.label}: {detail}" if self.label else detail
            self._progress(FitMessage(text, key=self.key, label=self.label, title=self.title, detail=detail,
                                      fit_fraction=self.fraction, state=state, heartbeat=beat), self.fraction)


class _Heartbeat(threading.Thread):
    """The daemon thread of :func:`heartbeat`."""

    def __init__(self, report: FitProgress, phase: str, interval: float) -> None:
        super().__init__(name="chronoscope-heartbeat", daemon=True)
        self.report, self.phase, self.interval = report, phase, float(interval)
        self.started_at = time.monotonic()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(max(self.interval - self.report.quiet_seconds(), 0.01)):
            try:
                self.report.beat(f"{self.phase}, {time.monotonic() - self.started_at:.0f} s",
                                 quiet_s=self.interval * 0.99, stopped=self.stopped)
            except (Exception, KeyboardInterrupt):
                # the progress channel is gone (a job's manager went away: JobCancelled): stop beating and
                # leave the fit alone; its own next message, or the cancel signal, ends the work
                return

    def stop(self) -> None:
        self.stopped.set()
        with self.report._lock:        # a beat in progress has ended; none starts after this
            pass
        self.join(timeout=1.0)


@contextmanager
def heartbeat(progress: Callable[[str, float], None] | None, phase: str = "fitting",
              interval: float | None = None) -> Iterator[FitProgress | None]:
    """While the block runs, report ``"{phase}, {seconds} s"`` whenever nothing was reported for ``interval`` s.

    Parameters
    ----------
    progress : FitProgress or callable(message, fraction) or None
        A plain callable is wrapped in a :class:`FitProgress` (yielded: report through it, so the beats
        know when the block last spoke). ``None``: nothing happens.
    phase : str
        What the block does ("fitting", "scoring validation and test patients").
    interval : float, optional
        Seconds, > 0 (default :data:`HEARTBEAT_S`, read at each call).

    Yields
    ------
    FitProgress or None

    Raises
    ------
    ValueError
        ``interval`` is not a positive number.

    Examples
    --------
    >>> import time
    >>> seen = []
    >>> with heartbeat(lambda m, f: seen.append(str(m)), interval=0.05):
    ...     time.sleep(0.3)
    >>> seen[0]
    'fitting, 0 s'
    """
    interval = HEARTBEAT_S if interval is None else interval
    if not (isinstance(interval, numbers.Real) and interval > 0):
        raise ValueError(f"heartbeat interval must be a number of seconds > 0; got {interval!r}. Example: "
                         "heartbeat(progress, interval=5.0).")
    if progress is None:
        yield None
        return
    report = progress if isinstance(progress, FitProgress) else FitProgress(progress)
    beat = _Heartbeat(report, phase, interval)
    beat.start()
    try:
        yield report
    finally:
        beat.stop()


def stage_plan(model) -> tuple[str, int, str] | None:
    """How :func:`fit_in_stages` grows ``model``: ``(parameter, total, unit)``, or None (one plain fit).

    ``("n_estimators", 100, "trees")`` for a random forest; None for every other model, for a forest
    already set to ``warm_start``, with ``oob_score`` (recomputed over every tree at each stage), or with
    a ``random_state`` that is neither None nor an integer (a ``RandomState`` is consumed differently by
    one fit and by several). Gradient boosting is not staged: grown with ``warm_start`` it is the same
    model, but every ``fit`` call bins the training data again, which costs a sizeable share of the
    whole fit per stage (see the module docstring); its heartbeat reports instead.
    """
    from sklearn.ensemble import RandomForestClassifier
    if not isinstance(model, RandomForestClassifier):
        return None
    seed = model.random_state
    if model.warm_start or model.oob_score or not (seed is None or isinstance(seed, numbers.Integral)):
        return None
    return "n_estimators", int(model.n_estimators), "trees"


def _next_size(total: int, done: int, last: tuple | None, stage_s: float) -> int:
    """Units of the next stage: 1/20 of ``total`` first, then about ``stage_s`` seconds of work at the speed
    of the last stage ``(units, seconds)``, never less than 1/20 of ``total`` (at most ~20 stages)."""
    lo = max(1, math.ceil(total / _MAX_STAGES))
    if last is None:
        return min(total - done, lo)
    units, seconds = last
    return min(total - done, max(lo, round(stage_s * units / max(seconds, 1e-9))))


def fit_in_stages(model, X, y, progress: Callable[[str, float], None] | None = None, *, stage_s: float = STAGE_S):
    """``model.fit(X, y)``, grown in stages with a report after each when :func:`stage_plan` allows.

    Parameters
    ----------
    model : scikit-learn estimator
    X, y : array-like
        As ``model.fit`` takes them.
    progress : callable(message, fraction), optional
        Gets ``("trees 40/100", 0.4)`` after each stage. None: one plain fit.
    stage_s : float
        Seconds of work per stage to aim at.

    Returns
    -------
    The fitted ``model`` (the same object, of the same class, with the ``warm_start`` and tree count it had).
    """
    plan = None if progress is None else stage_plan(model)
    if plan is None:
        return model.fit(X, y)
    param, total, unit = plan
    if type(X) is np.ndarray and X.dtype != np.float32:
        X = X.astype(np.float32)   # what the forest's own input check does, at every stage: once is enough
    done, last = 0, None
    try:
        model.set_params(warm_start=True)
        while done < total:
            k = _next_size(total, done, last, stage_s)
            model.set_params(**{param: done + k})
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                # the same data at every stage, so class_weight="balanced" weighs as one fit does
                warnings.filterwarnings("ignore", message="class_weight presets", category=UserWarning)
                model.fit(X, y)
            last = (k, time.perf_counter() - t0)
            done += k
            progress(f"{unit} {done}/{total}", done / total)
    finally:                          # stage_plan stages only models with warm_start off
        model.set_params(warm_start=False, **{param: total})
    return model
