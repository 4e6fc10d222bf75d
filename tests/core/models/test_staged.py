"""core.models.staged: fits never go silent (heartbeat), a random forest grown in stages is the same model, the
fraction of a fit never goes backwards, and a job names its slowest running fit."""
from __future__ import annotations

import math
import pickle
import threading
import time
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

import core.models.staged as staged
from core.config import FeatureConfig
from core.service.jobs import FitStatus, JobInfo, _FitBoard
from core.models import registry
from core.models.base import ModelSpec
from core.models.staged import FitMessage, FitPlan, FitProgress, fit_in_stages, heartbeat, stage_plan
from core.training.protocol import fit_model, run_protocol, split_by_patient
from core.training.threads import limit_threads
from tests.helpers.cohorts import make_tiny_cohort


class _Recorder:
    """A progress callback that records (time, message, fraction), from any thread."""

    def __init__(self) -> None:
        self.calls, self.lock = [], threading.Lock()

    def __call__(self, message, fraction) -> None:
        with self.lock:
            self.calls.append((time.monotonic(), message, fraction))


class _SlowFit(ClassifierMixin, BaseEstimator):
    """Sleeps in fit: a fit that reports nothing by itself."""

    def __init__(self, seconds=0.3):
        self.seconds = seconds

    def fit(self, X, y):
        time.sleep(self.seconds)
        self.classes_ = np.unique(y)
        return self


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 12))
    X[::9, 2] = np.nan
    y = (X[:, 0] + rng.normal(scale=0.8, size=300) > 0).astype(int)
    return X, y


# -- the heartbeat -----------------------------------------------------------------------------
def test_heartbeat_reports_during_a_slow_fit_and_never_after():
    seen = _Recorder()
    with heartbeat(seen, interval=0.05) as report:
        report("training", 0.25)
        time.sleep(0.3)
    ended = time.monotonic()
    n = len(seen.calls)
    time.sleep(0.2)
    beats = [c for c in seen.calls if c[1].heartbeat]
    assert beats, seen.calls
    assert all(str(m).startswith("fitting, ") and str(m).endswith(" s") for _, m, _ in beats)
    assert all(f == 0.25 for _, _, f in beats)                 # a beat keeps the fit's fraction
    assert len(seen.calls) == n and all(t <= ended for t, _, _ in seen.calls)


def test_heartbeat_never_raises_into_the_fit():
    calls = []

    def broken(message, fraction):
        calls.append(message)
        raise KeyboardInterrupt        # what a job's progress raises when its manager is gone

    with heartbeat(broken, "scoring validation and test patients", interval=0.02):
        time.sleep(0.2)                # the block ends normally
    assert len(calls) == 1 and calls[0].startswith("scoring validation and test patients, ")


def test_heartbeat_without_progress_does_nothing_and_checks_its_interval():
    with heartbeat(None) as report:
        assert report is None
    with pytest.raises(ValueError, match="interval"):
        with heartbeat(lambda m, f: None, interval=0):
            pass


def test_fit_model_beats_while_a_silent_model_fits(monkeypatch):
    monkeypatch.setattr(staged, "HEARTBEAT_S", 0.05)
    fs = type("FS", (), {"online": False, "get": staticmethod(lambda kind: np.zeros((4, 2)))})()
    seen = _Recorder()
    fit_model(_SlowFit(0.3), ModelSpec("slow", "tabular", _SlowFit), fs, np.array([0, 1, 0, 1]), seen)
    assert any(str(m).startswith("fitting, ") for _, m, _ in seen.calls)


# -- one fit's progress: thread-safe, monotone, labelled ---------------------------------------
def test_fit_progress_is_monotone_labelled_and_picklable():
    seen = _Recorder()
    report = FitProgress(seen, label="fold 1/2: rf", key="3.1", title="fold 1/2: random forest").within(0.0, 0.9)
    report("trees 5/10", 0.5)
    report("trees 2/10", 0.2)                                  # late or out of order: the fraction holds
    report.within(0.9, 1.0)("scoring validation and test patients", 0.0)
    report.finish("done in 1.0 s")
    fractions = [f for _, _, f in seen.calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] == pytest.approx(0.45)
    last = seen.calls[-1][1]
    assert str(last) == "fold 1/2: rf: done in 1.0 s" and isinstance(last, str)
    assert (last.key, last.title, last.detail, last.state) == ("3.1", "fold 1/2: random forest", "done in 1.0 s", "done")
    again = pickle.loads(pickle.dumps(last))                   # crosses processes (a job's pipe, Ray)
    assert again == last and again.key == "3.1" and again.state == "done"
    plan = pickle.loads(pickle.dumps(FitPlan("building features", (("3.0", "LR"), ("3.1", "RF")))))
    assert plan == "building features" and plan.fits == (("3.0", "LR"), ("3.1", "RF"))


def test_fit_progress_serialises_threads():
    inside, overlaps = [0], []

    def slow(message, fraction):
        inside[0] += 1
        overlaps.append(inside[0])
        time.sleep(0.001)
        inside[0] -= 1
    report = FitProgress(slow)
    threads = [threading.Thread(target=lambda: [report("x", 0.1) for _ in range(20)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(overlaps) == 80 and max(overlaps) == 1


# -- staged growth: the same model as one fit ------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: RandomForestClassifier(n_estimators=37, min_samples_leaf=3, random_state=3),
    lambda: RandomForestClassifier(n_estimators=12, max_samples=0.5, class_weight="balanced", random_state=1),
    lambda: registry.get("rf").make("quick", random_state=0),
], ids=["rf", "rf-balanced", "registry-rf"])
def test_staged_growth_gives_the_model_of_one_fit(make, data):
    X, y = data
    grown, seen = make(), _Recorder()
    with limit_threads(1), warnings.catch_warnings():
        plain = make().fit(X, y)
        warnings.simplefilter("error")                         # no warm-start warnings leak out
        assert fit_in_stages(grown, X, y, seen, stage_s=0.0) is grown   # 1/20 per stage
        np.testing.assert_array_equal(grown.predict_proba(X), plain.predict_proba(X))
    assert len(grown.estimators_) == len(plain.estimators_)
    for a, b in zip(plain.estimators_, grown.estimators_):     # the very same trees, node for node
        for field in ("feature", "threshold", "children_left", "children_right", "value"):
            np.testing.assert_array_equal(getattr(a.tree_, field), getattr(b.tree_, field))
    assert type(grown) is type(plain) and grown.get_params() == plain.get_params()   # warm_start off again
    param, total, unit = stage_plan(make())
    counts = [int(str(m).split()[-1].split("/")[0]) for _, m, _ in seen.calls]
    per_stage = math.ceil(total / 20)
    assert len(counts) == math.ceil(total / per_stage) and counts == sorted(set(counts)) and counts[-1] == total
    assert all(str(m).startswith(f"{unit} ") for _, m, _ in seen.calls)
    fractions = [f for _, _, f in seen.calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_what_is_not_staged(data):
    X, y = data
    # the same model when grown, but every warm-started fit bins the data again: too dear per stage
    assert stage_plan(HistGradientBoostingClassifier(early_stopping=False)) is None
    assert stage_plan(registry.get("gbm").make("quick", random_state=0)) is None
    assert stage_plan(RandomForestClassifier(random_state=np.random.RandomState(0))) is None
    assert stage_plan(RandomForestClassifier(warm_start=True)) is None
    assert stage_plan(RandomForestClassifier(oob_score=True)) is None
    assert stage_plan(make_pipeline(RandomForestClassifier())) is None               # inside a pipeline: heartbeat only
    assert stage_plan(CalibratedClassifierCV(SVC())) is None
    seen = _Recorder()
    fit_in_stages(make_pipeline(RandomForestClassifier(n_estimators=3, random_state=0)), X, y, seen)
    assert seen.calls == []                                    # one plain fit


def test_stage_sizes_cover_the_total_in_about_5_s_steps():
    def sizes(total, seconds_per_tree):
        last, done, out = None, 0, []
        while done < total:
            k = staged._next_size(total, done, last, 5.0)
            last, done = (k, k * seconds_per_tree), done + k
            out.append(k)
        return out
    assert sizes(300, 2.0) == [15] * 20                       # slow trees: 1/20 of them per stage, no more stages
    assert sizes(100, 0.1) == [5, 50, 45]                      # about 5 s per stage
    assert sizes(5, 0.001) == [1, 4]                           # a fast fit: two stages


# -- the protocol: every fit reports, its fraction never goes backwards -----------------------
def test_every_fit_of_a_run_reports_and_never_goes_backwards():
    cohort = make_tiny_cohort(60, seed=2)
    specs = [registry.get(n) for n in ("lr", "rf", "gbm", "gru")]
    seen = _Recorder()
    res = run_protocol(cohort, specs, split_by_patient(cohort), features=FeatureConfig(window_hours=6),
                       preset="test", progress=seen)
    plain = run_protocol(cohort, specs, split_by_patient(cohort), features=FeatureConfig(window_hours=6),
                         preset="test")
    for name in ("rf", "gbm"):                                 # progress or not: the same risks
        np.testing.assert_array_equal(res.test[name].y_proba, plain.test[name].y_proba)
    first = seen.calls[0][1]
    assert isinstance(first, FitPlan) and [t for _, t in first.fits] == \
        ["logistic regression", "random forest", "gradient boosting", "GRU"]
    overall = [f for _, _, f in seen.calls]
    assert overall == sorted(overall) and overall[-1] == 1.0
    by_fit = {}
    for _, m, _ in seen.calls:
        if isinstance(m, FitMessage):
            by_fit.setdefault(m.title, []).append(m)
    assert set(by_fit) == {t for _, t in first.fits}
    for title, messages in by_fit.items():
        own = [m.fit_fraction for m in messages]
        assert own == sorted(own) and messages[-1].state == "done" and own[-1] == 1.0, title
        assert messages[0].detail == "training"
        assert any(m.detail == "scoring validation and test patients" for m in messages), title
    assert any(m.detail.startswith("trees ") for m in by_fit["random forest"])


# -- the job: which fits remain, and the slowest ----------------------------------------------
def test_the_job_board_follows_fits_and_names_the_slowest():
    board = _FitBoard()
    assert board.observe(FitPlan("building features", (("1.0", "SVM"), ("1.1", "random forest"), ("1.2", "GRU"))))
    svm = FitProgress(lambda m, f: board.observe(m), label="svm", key="1.0", title="SVM")
    rf = FitProgress(lambda m, f: board.observe(m), label="rf", key="1.1", title="random forest")
    svm("training", 0.0)
    rf("training", 0.0)
    rf("trees 60/100", 0.6)
    rf.beat("fitting, 45 s")                                   # a heartbeat keeps the last real message
    fits = dict(zip(("svm", "rf", "gru"), board.snapshot()))
    assert [f.state for f in fits.values()] == ["running", "running", "waiting"]
    assert fits["rf"].detail == "trees 60/100"
    now = time.time()
    info = JobInfo(id="j", kind="train", label="train", state="running", started=now - 60,
                   fits=(FitStatus("logistic regression", "done", now - 60, now - 58, "done in 2.0 s"),
                         FitStatus("SVM", "running", now - 12, 0.0, "training"),
                         FitStatus("random forest", "running", now - 45, 0.0, "trees 60/100"),
                         FitStatus("GRU", "waiting")))
    assert info.slowest_fit.title == "random forest"
    assert [f.title for f in info.remaining_fits] == ["random forest", "SVM", "GRU"]
    text = info.describe_fits()
    assert text.startswith("1 of 4 fits done. Slowest remaining fit: random forest, 45 s (trees 60/100).")
    assert "Also running: SVM (12 s)." in text and text.endswith("Not started: GRU.")
    svm.finish("done in 3.0 s")
    assert [f.state for f in board.snapshot()][0] == "done"
    from dataclasses import replace
    assert replace(info, state="done").describe_fits() == "" and JobInfo(id="k", kind="explain", label="x",
                                                                          state="running").describe_fits() == ""


# -- the command line: heartbeats are shown, fits side by side are counted once ----------------
def test_cli_progress_shows_heartbeats_and_counts_fits_reported_side_by_side(monkeypatch):
    import io

    from core.commands import common
    from core.commands.train import TqdmProgress
    monkeypatch.setattr(common, "_LINE_EVERY_S", 0.0)          # plain lines: every changed message
    out = io.StringIO()                                        # not a terminal: plain lines
    bar, fractions = TqdmProgress(["lr", "rf"], file=out), {}

    def fit(name):                                             # as Ray forwards them: overall = mean of the fits
        def send(message, fraction):
            fractions[name] = fraction
            bar(message, sum(fractions.values()) / 2)
        return FitProgress(send, label=name, key=name, title=name)
    lr, rf = fit("lr"), fit("rf")
    lr("training", 0.0)
    rf("training", 0.0)
    rf("trees 2/5", 0.4)
    lr.beat("fitting, 12 s")
    lr.finish("done in 1.0 s")
    rf.beat("fitting, 15 s")
    assert bar.outer.n == 1
    rf.finish("done in 2.0 s")
    bar.close()
    text = out.getvalue()
    assert "lr: fitting, 12 s" in text and "rf: fitting, 15 s" in text and "rf: trees 2/5" in text
    assert bar.outer.n == 2 and "models: 100%" in text
