"""Tests for core.data.demo: the synthetic demo cohort whose outcome depends on time order."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.data import demo
from core.data.demo import (DEMO_TARGET, STATIC_VARIABLES, TIME_SERIES_VARIABLES, demo_paths,
                       generate_demo_cohort, hypotension_before_spike, write_demo)


@pytest.fixture(scope="module")
def cohort() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_demo_cohort(n_patients=300, seed=3)


def _aggregates(events: pd.DataFrame, ids: pd.Series) -> np.ndarray:
    """Order-free per-variable summaries: first, last, mean, min, max, std, count, slope."""
    ev = events.assign(tv=events["time"] * events["value"], tt=events["time"] ** 2)
    s = ev.groupby(["patient_id", "variable"]).agg(
        first=("value", "first"), last=("value", "last"), mean=("value", "mean"),
        min=("value", "min"), max=("value", "max"), std=("value", "std"), count=("value", "size"),
        mt=("time", "mean"), mtv=("tv", "mean"), mtt=("tt", "mean"))
    s["slope"] = (s["mtv"] - s["mt"] * s["mean"]) / (s["mtt"] - s["mt"] ** 2).replace(0, np.nan)
    wide = s.drop(columns=["mt", "mtv", "mtt"]).unstack("variable").reindex(ids)
    wide = wide.loc[:, wide.notna().any()]
    return wide.fillna(wide.median()).fillna(0.0).to_numpy()


def _test_auroc(X: np.ndarray, y: np.ndarray) -> float:
    half = len(y) // 2
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    model.fit(X[:half], y[:half])
    return roc_auc_score(y[half:], model.predict_proba(X[half:])[:, 1])


def test_deterministic_by_seed() -> None:
    e1, o1 = generate_demo_cohort(n_patients=40, seed=7)
    e2, o2 = generate_demo_cohort(n_patients=40, seed=7)
    e3, _ = generate_demo_cohort(n_patients=40, seed=8)
    pd.testing.assert_frame_equal(e1, e2)
    pd.testing.assert_frame_equal(o1, o2)
    assert not e1.equals(e3)


def test_columns_and_dtypes(cohort) -> None:
    events, outcomes = cohort
    assert events.columns.tolist() == ["patient_id", "time", "variable", "value"]
    assert outcomes.columns.tolist() == ["patient_id", DEMO_TARGET, "length_of_stay"]
    assert events["time"].dtype == np.float64 and events["value"].dtype == np.float64
    assert pd.api.types.is_string_dtype(events["patient_id"])
    assert pd.api.types.is_string_dtype(events["variable"])
    assert pd.api.types.is_integer_dtype(outcomes[DEMO_TARGET])
    assert outcomes["patient_id"].is_unique and len(outcomes) == 300
    assert outcomes["patient_id"].str.fullmatch(r"D\d{5}").all()
    assert set(events["patient_id"]) == set(outcomes["patient_id"])
    assert set(events["variable"]) == set(STATIC_VARIABLES) | set(TIME_SERIES_VARIABLES)
    assert not events.duplicated(["patient_id", "variable", "time"]).any()
    assert events.notna().all().all()


def test_times_are_minutes_within_stay(cohort) -> None:
    t = cohort[0]["time"].to_numpy()
    assert t.min() >= 0.0 and t.max() <= 48.0
    np.testing.assert_allclose(t * 60.0, np.round(t * 60.0), atol=1e-6)


def test_static_rows_at_time_zero(cohort) -> None:
    events, _ = cohort
    static = events[events["variable"].isin(STATIC_VARIABLES)]
    assert (static["time"] == 0.0).all()
    assert (static.groupby("variable").size() == 300).all()
    assert set(static.loc[static["variable"] == "Gender", "value"]) <= {0.0, 1.0}


@pytest.mark.parametrize("variable, lo, hi", [
    ("Age", 18, 90), ("Weight", 40, 200), ("HR", 30, 220), ("MAP", 20, 200), ("SpO2", 75, 100),
    ("GCS", 3, 15), ("Temp", 34, 42), ("Lactate", 0.3, 25), ("Urine", 0, 600), ("Glucose", 40, 600)])
def test_value_ranges(cohort, variable, lo, hi) -> None:
    v = cohort[0].loc[lambda d: d["variable"] == variable, "value"]
    assert len(v) > 0 and v.between(lo, hi).all()


def test_missingness_and_irregular_labs(cohort) -> None:
    events, _ = cohort
    per_patient = events.groupby(["patient_id", "variable"]).size().unstack(fill_value=0)
    assert (per_patient["Lactate"] == 0).mean() > 0.05         # some patients never have Lactate
    assert per_patient["HR"].median() > 30                     # vitals roughly hourly over 48 h
    assert per_patient["Creatinine"].median() < 8              # labs sparse


def test_outcomes_prevalence_and_los(cohort) -> None:
    _, outcomes = cohort
    assert 0.12 <= outcomes[DEMO_TARGET].mean() <= 0.30
    assert set(outcomes[DEMO_TARGET]) == {0, 1}
    assert (outcomes["length_of_stay"] >= 2.0).all()


def test_both_orders_occur() -> None:
    _, _, truth = demo.simulate(200, 48.0, 0, 1.0, 1.0)
    assert 0.35 < truth.order.mean() < 0.65
    assert set(np.unique(truth.order)) == {0, 1}


def test_order_term_carries_signal_only_when_weighted() -> None:
    events, outcomes, truth = demo.simulate(600, 48.0, 0, 1.0, 1.0)
    y = outcomes[DEMO_TARGET].to_numpy()
    X = _aggregates(events, outcomes["patient_id"])
    agg = _test_auroc(X, y)
    oracle = _test_auroc(np.column_stack([X, truth.order]), y)
    assert oracle > agg + 0.05, (agg, oracle)

    events0, outcomes0, truth0 = demo.simulate(600, 48.0, 0, 0.0, 1.0)
    y0 = outcomes0[DEMO_TARGET].to_numpy()
    assert abs(roc_auc_score(y0, truth0.order) - 0.5) < 0.07
    assert roc_auc_score(y, truth.order) > 0.62


def test_order_is_invisible_to_aggregates() -> None:
    # The pairs start at a uniform phase of the period, so per-variable summaries have the same
    # distribution in both orders: they should not predict the order flag.
    events, outcomes, truth = demo.simulate(600, 48.0, 2, 1.0, 1.0)
    X = _aggregates(events, outcomes["patient_id"])
    assert _test_auroc(X, truth.order.astype(int)) < 0.62


def test_episode_pairs_repeat_in_a_consistent_order() -> None:
    _, _, truth = demo.simulate(100, 48.0, 0, 1.0, 1.0)
    lag = truth.spike_onset_h - truth.hypotension_onset_h          # (n_patients, n_pairs)
    assert (np.sign(lag) == np.where(truth.order == 1, 1, -1)[:, None]).all()
    in_window = ((truth.hypotension_onset_h >= 0) & (truth.hypotension_onset_h < 48)).sum(axis=1)
    assert set(np.unique(in_window)) <= {1, 2, 3} and np.mean(in_window >= 2) > 0.9


def test_handmade_order_feature_tracks_truth() -> None:
    # Lowest MAP and highest HR may fall in different pairs, so this rough feature is only a hint.
    events, outcomes, truth = demo.simulate(200, 48.0, 1, 1.0, 1.0)
    feature = hypotension_before_spike(events).reindex(outcomes["patient_id"]).to_numpy()
    assert np.mean(feature == truth.order) > 0.6


@pytest.mark.parametrize("kwargs, match", [
    ({"n_patients": 0}, "n_patients"), ({"hours": 10.0}, "hours"),
    ({"order_weight": -1.0}, "order_weight"), ({"level_weight": float("nan")}, "level_weight")])
def test_bad_arguments(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        generate_demo_cohort(**kwargs)


def test_write_demo_roundtrip(tmp_path) -> None:
    paths = write_demo(tmp_path, n_patients=30, seed=2)
    events, outcomes = generate_demo_cohort(n_patients=30, seed=2)
    pd.testing.assert_frame_equal(pd.read_parquet(paths["events"]), events, check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_csv(paths["outcomes"], dtype={"patient_id": str}), outcomes,
                                  check_dtype=False)


def test_committed_files_match_code() -> None:
    events_path, outcomes_path = demo_paths()
    assert events_path.exists() and outcomes_path.exists(), \
        "data/demo is missing; regenerate it with `python -m core demo --out data/demo`"
    events, outcomes = generate_demo_cohort(seed=0)
    saved = pd.read_parquet(events_path)
    saved_out = pd.read_csv(outcomes_path, dtype={"patient_id": str})
    assert events_path.stat().st_size < 4_000_000
    assert len(saved) == len(events) and saved["patient_id"].nunique() == 2000
    pd.testing.assert_frame_equal(saved_out, outcomes, check_dtype=False)
    pd.testing.assert_frame_equal(saved, events, check_dtype=False)
