"""Integration: the real PhysioNet 2012 set-a sample from ``../shared/data/physionet2012`` (never copied in)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.config import DataConfig
from core.data.ingest import validate_data
from tests.helpers.paths import ROOT

DATA = ROOT.parent / "shared/data/physionet2012"
EVENTS, OUTCOMES = DATA / "set-a.csv.gz", DATA / "outcomes-a.csv"
TARGET = "in_hospital_death"

pytestmark = [pytest.mark.real, pytest.mark.slow]


@pytest.fixture(scope="module")
def loaded():
    if not EVENTS.exists() or not OUTCOMES.exists():
        pytest.skip("../shared/data/physionet2012 not found: the real-data tests need the shared PhysioNet "
                    "sample beside the repo")
    return validate_data(EVENTS, OUTCOMES, config=DataConfig(target=TARGET))


def test_set_a_loads_into_a_trainable_cohort(loaded):
    cohort, report = loaded
    assert report.ok, report.to_text()
    assert cohort.n_patients == 4000
    assert len(cohort.labelled_ids) == 4000
    assert int(cohort.labels.loc[cohort.labelled_ids].sum()) == 554
    assert report.rows_read == report.rows_used + sum(report.rows_excluded.values())


def test_set_a_static_attributes_and_series(loaded):
    cohort, report = loaded
    assert cohort.static_variables == ["Age", "Gender", "Height", "ICUType", "Weight"]
    assert len(cohort.series_variables) in (36, 37)
    assert "Weight" in cohort.series_variables  # re-measured later: a series as well as an attribute
    assert not {"Age", "Gender", "Height", "ICUType"} & set(cohort.series_variables)
    height = cohort.static["Height"]
    assert height.isna().any() and not (height == -1).any()  # -1 means unknown
    assert "static_sentinel" in report.codes()


def test_set_a_outcomes_never_become_features(loaded):
    cohort, report = loaded
    features = {v.lower() for v in cohort.static_variables + cohort.series_variables}
    assert not features & {"length_of_stay", "survival", "saps_i", "sofa", TARGET}
    assert "leakage_outcomes" in report.codes()
    assert np.isfinite(cohort.events["value"].to_numpy()).all()


def test_set_a_cli_exit_0(loaded):
    proc = subprocess.run([sys.executable, "-m", "core", "validate", str(EVENTS), "--labels", str(OUTCOMES),
                           "--target", TARGET], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4,000" in proc.stdout and "554" in proc.stdout
    assert "Traceback" not in proc.stderr
