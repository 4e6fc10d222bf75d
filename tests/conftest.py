"""Fixtures every test can use: the seeded synthetic cohorts (built in code, tests/helpers/cohorts.py), one saved
run shared by the whole session, and the ``--all`` option: without it, tests marked ``slow`` are skipped."""
from __future__ import annotations

import os

# One thread for every OpenMP/torch fit in the tests (and the app/CLI subprocesses they start), so a
# result never depends on how busy the machine is (core.training.threads.thread_count).
os.environ.setdefault("CHRONOSCOPE_THREADS", "1")

import pytest  # noqa: E402

pytest.register_assert_rewrite("tests.helpers")      # helpers' asserts report their values like a test's

from tests.helpers.cohorts import make_online_cohort, make_planted_order_cohort, make_tiny_cohort  # noqa: E402
from tests.helpers.runs import TrainedRun, train_tiny_run  # noqa: E402

SLOW_REASON = "slow: run with --all (CI does)"


def pytest_addoption(parser):
    parser.addoption("--all", action="store_true", default=False,
                     help="also run the tests marked slow (browser checks, Ray, real data, long trainings); "
                          "CI and the README's test command do")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--all"):
        return
    skip = pytest.mark.skip(reason=SLOW_REASON)
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)


@pytest.fixture
def tiny_cohort():
    return make_tiny_cohort()


@pytest.fixture
def planted_order_cohort():
    return make_planted_order_cohort()


@pytest.fixture
def online_cohort():
    return make_online_cohort()


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> TrainedRun:
    """One small saved run (lr, gbm, gru; test preset) of the tiny cohort, trained once per session by the CLI
    (:func:`tests.helpers.runs.train_tiny_run`). Read it only: a test that changes a run copies it first
    (``core.runs.store.copy_run``)."""
    return train_tiny_run(tmp_path_factory.mktemp("trained_run"))
