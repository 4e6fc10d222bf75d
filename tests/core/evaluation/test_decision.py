"""Decision curves (core.evaluation.decision): hand computations, treat-all / treat-none, dcurves, bootstrap bands."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.evaluation.decision import (DEFAULT_THRESHOLDS, curves_from_results, decision_curves, default_thresholds, net_benefit,
                           threshold_grid, treat_all)
from core.evaluation.metrics import ClusterBootstrap

# A seeded example and what dcurves 1.1.7 (`dca`) gave for it (recorded, so the check holds without dcurves too).
Y = [0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1,
     0, 1, 0]
A = [0.399, 0.359, 0.117, 0.296, 0.623, 0.294, 0.424, 0.295, 0.736, 0.264, 0.308, 0.376, 0.001, 0.186, 0.156, 0.472,
     0.195, 0.899, 0.077, 0.444, 0.001, 0.183, 0.283, 0.367, 0.392, 0.759, 0.18, 0.508, 0.772, 0.212, 0.001, 0.023,
     0.066, 0.349, 0.278, 0.738, 0.515, 0.282, 0.725, 0.188]
B = [0.814, 0.167, 0.023, 0.09, 0.722, 0.462, 0.161, 0.501, 0.152, 0.696, 0.446, 0.381, 0.302, 0.63, 0.362, 0.088,
     0.118, 0.962, 0.909, 0.7, 0.266, 0.969, 0.779, 0.717, 0.449, 0.272, 0.096, 0.903, 0.456, 0.202, 0.306, 0.579,
     0.177, 0.857, 0.759, 0.719, 0.432, 0.627, 0.584, 0.65]
T = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7]
DCURVES = {"a": [0.215789473684, 0.183333333333, 0.14375, 0.153571428571, 0.225, 0.15],
           "b": [0.211842105263, 0.15, 0.05625, -0.05, -0.225, -0.366666666667],
           "all": [0.210526315789, 0.166666666667, 0.0625, -0.071428571429, -0.5, -1.5]}


def test_net_benefit_equals_a_hand_computation():
    y = [1, 1, 0, 0, 0, 1, 0, 0]
    risk = [0.9, 0.5, 0.5, 0.3, 0.2, 0.2, 0.1, 0.05]
    # pt = 0.2: risk >= 0.2 -> rows 0-5: TP = 3 (rows 0, 1, 5), FP = 3; 3/8 - 3/8 * 0.25 = 0.28125
    # pt = 0.5: rows 0-2 (0.5 counts, as the saved threshold does): TP = 2, FP = 1; 2/8 - 1/8 * 1 = 0.125
    # pt = 0.6: row 0: TP = 1, FP = 0; 1/8 = 0.125
    # pt = 0.95: nobody: 0
    np.testing.assert_allclose(net_benefit(y, risk, [0.2, 0.5, 0.6, 0.95]), [0.28125, 0.125, 0.125, 0.0])


def test_treat_all_and_treat_none():
    y = [1, 0, 0, 0, 1, 0, 0, 0, 0, 0]                     # prevalence 0.2
    t = np.array([0.0, 0.1, 0.2, 0.5])
    np.testing.assert_allclose(treat_all(y, t), [0.2, 0.2 - 0.8 / 9, 0.0, 0.2 - 0.8], atol=1e-15)
    # a model that flags everyone is treat-all; one that flags no one is treat-none
    np.testing.assert_allclose(net_benefit(y, np.full(10, 0.99), t), treat_all(y, t))
    np.testing.assert_allclose(net_benefit(y, np.zeros(10), t[1:]), 0.0)
    frame = decision_curves(y, {"m": np.linspace(0, 1, 10)}, t).to_frame()
    assert set(frame["model"]) == {"m", "all", "none"}
    assert (frame.loc[frame["model"] == "none", "net_benefit"] == 0).all()


def test_matches_the_recorded_dcurves_output():
    dc = decision_curves(Y, {"a": A, "b": B}, T)
    for name in ("a", "b"):
        np.testing.assert_allclose(dc.net_benefit[name], DCURVES[name], atol=1e-11)
    np.testing.assert_allclose(dc.treat_all, DCURVES["all"], atol=1e-11)


def test_matches_dcurves_dca_when_installed():
    dcurves = pytest.importorskip("dcurves", reason="dcurves (requirements-dev.txt) not installed")
    rng = np.random.default_rng(7)
    y = (rng.random(300) < 0.2).astype(int)
    risks = {"m1": np.clip(0.2 + 0.3 * y + rng.normal(0, 0.2, 300), 0, 1), "m2": rng.random(300)}
    t = threshold_grid(0.01, 0.99, 0.01)
    ref = dcurves.dca(data=pd.DataFrame({"y": y, **risks}), outcome="y", modelnames=list(risks), thresholds=t)
    dc = decision_curves(y, risks, t)
    for name in risks:
        np.testing.assert_allclose(dc.net_benefit[name], ref[ref["model"] == name]["net_benefit"], atol=1e-12)
    np.testing.assert_allclose(dc.treat_all, ref[ref["model"] == "all"]["net_benefit"], atol=1e-12)
    np.testing.assert_allclose(ref[ref["model"] == "none"]["net_benefit"], 0.0)


def test_thresholds_in_any_order_and_the_default_grid():
    t = [0.5, 0.05, 0.3]
    np.testing.assert_allclose(net_benefit(Y, A, t), net_benefit(Y, A, sorted(t))[[2, 0, 1]])
    assert len(DEFAULT_THRESHOLDS) == 99 and DEFAULT_THRESHOLDS[0] == 0.01 and DEFAULT_THRESHOLDS[-1] == 0.99
    np.testing.assert_allclose(threshold_grid(0.05, 0.2, 0.05), [0.05, 0.1, 0.15, 0.2])


def test_row_bootstrap_band_contains_the_estimate_and_is_seeded():
    dc = decision_curves(Y, {"a": A}, T, n_bootstrap=200, random_state=3)
    lo, hi = dc.ci["a"]
    assert (lo <= dc.net_benefit["a"] + 1e-12).all() and (dc.net_benefit["a"] <= hi + 1e-12).all()
    assert (hi > lo).any() and dc.unit == "patient"
    again = decision_curves(Y, {"a": A}, T, n_bootstrap=200, random_state=3)
    np.testing.assert_array_equal(again.ci["a"][0], lo)
    # one resample by hand: the band's draws are bootstrap_indices(n, B, seed)
    from core.evaluation.metrics import bootstrap_indices
    idx = bootstrap_indices(len(Y), 200, 3)
    vals = np.array([net_benefit(np.asarray(Y)[i], np.asarray(A)[i], T) for i in idx])
    np.testing.assert_allclose(lo, np.percentile(vals, 2.5, axis=0))


def test_cluster_bootstrap_for_patient_hours_resamples_patients():
    # online run: rows are patient-hours; the band resamples whole patients
    rng = np.random.default_rng(0)
    pid = np.repeat([f"p{i}" for i in range(30)], 8)
    y = (rng.random(len(pid)) < 0.15).astype(int)
    risk = np.clip(0.1 + 0.4 * y + rng.normal(0, 0.15, len(pid)), 0, 1)
    boot = ClusterBootstrap(pid, 100, random_state=1)
    dc = decision_curves(y, {"m": risk}, [0.1, 0.2, 0.4], bootstrap=boot)
    assert dc.unit == "patient-hour"
    np.testing.assert_allclose(dc.net_benefit["m"], net_benefit(y, risk, [0.1, 0.2, 0.4]))
    lo, hi = dc.ci["m"]
    assert (lo <= dc.net_benefit["m"] + 1e-12).all() and (hi >= dc.net_benefit["m"] - 1e-12).all()
    same = decision_curves(y, {"m": risk}, [0.1, 0.2, 0.4], groups=pid, n_bootstrap=100, random_state=1)
    np.testing.assert_allclose(same.ci["m"][0], lo)


def test_useful_range():
    dc = decision_curves(Y, {"a": A, "b": B}, T)
    lo, hi = dc.useful_range("a")
    assert lo == 0.05 and hi == 0.7
    assert decision_curves([0, 1, 0, 1], {"bad": [0.9, 0.1, 0.8, 0.2]}, [0.5]).useful_range("bad") is None


@pytest.mark.parametrize("kwargs, match", [
    (dict(y_true=[0, 2], risks={"m": [0.1, 0.2]}), "0/1"),
    (dict(y_true=[0, 1], risks={"m": [0.1, np.nan]}), "NaN"),
    (dict(y_true=[0, 1], risks={"m": [0.1, 0.2, 0.3]}), "one value per row"),
    (dict(y_true=[0, 1], risks={"m": [0.1, 0.2]}, thresholds=[0.5, 1.0]), r"\[0, 1\)"),
    (dict(y_true=[0, 1], risks={}), "at least one model"),
])
def test_bad_input_is_refused_with_a_message(kwargs, match):
    with pytest.raises(ValueError, match=match):
        decision_curves(**kwargs)


def test_the_cluster_resample_by_hand_is_one_of_the_draws():
    rng = np.random.default_rng(5)
    pid = np.repeat([f"p{i}" for i in range(12)], 5)
    y = (rng.random(len(pid)) < 0.3).astype(int)
    risk = rng.random(len(pid))
    boot = ClusterBootstrap(pid, 1, random_state=2)      # one resample: the band is that resample
    t = np.array([0.2, 0.5])
    dc = decision_curves(y, {"m": risk}, t, bootstrap=boot)
    w = boot.counts[0][boot.codes].astype(float)
    pred = risk[:, None] >= t
    nb0 = ((w[:, None] * pred * (y == 1)[:, None]).sum(0) - (w[:, None] * pred * (y == 0)[:, None]).sum(0)
           * t / (1 - t)) / w.sum()
    np.testing.assert_allclose(dc.ci["m"][0], nb0)
    np.testing.assert_allclose(dc.ci["m"][1], nb0)


def test_a_low_prevalence_gets_a_finer_grid_near_zero_and_results_of_a_run_work():
    from core.config import EvaluationConfig
    from core.evaluation.metrics import evaluate
    assert np.array_equal(default_thresholds([0, 1]), DEFAULT_THRESHOLDS)
    fine = default_thresholds([0] * 99 + [1])
    assert fine[0] == 0.001 and 0.013 in fine and fine[-1] == 0.99 and np.all(np.diff(fine) > 0)
    rng = np.random.default_rng(1)
    pid = np.repeat([f"p{i}" for i in range(20)], 10)
    y = (rng.random(200) < 0.03).astype(int)
    y[:2] = 1
    risk = np.clip(0.02 + 0.2 * y + rng.normal(0, 0.02, 200), 0, 1)
    res = {"lr": evaluate("lr", y, risk, 0.1, pid, EvaluationConfig(n_bootstrap=0), label="logistic regression",
                         times=np.tile(np.arange(10.0), 20))}
    dc = curves_from_results(res, n_bootstrap=20)
    assert dc.unit == "patient-hour" and len(dc.thresholds) == len(fine) and dc.labels == {"lr": "logistic regression"}
    np.testing.assert_allclose(dc.net_benefit["lr"], net_benefit(y, risk, dc.thresholds))
