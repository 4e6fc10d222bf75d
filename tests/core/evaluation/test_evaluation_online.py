"""Online (per patient-hour) evaluation: cluster bootstrap, weighted metrics, alarms."""
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from core.config import EvaluationConfig
from core.evaluation.metrics import (METRICS, ClusterBootstrap, alarm_metrics, binary_metrics, bootstrap_indices,
                             bootstrap_metrics, cluster_bootstrap_metrics, cluster_paired_bootstrap, compare,
                             evaluate)
from core.evaluation.cluster import _weighted_metric_rows


def _hours(n_patients=60, hours=12, seed=0, signal=1.0):
    """Patient-hours where label and risk are mostly per patient, so rows of a patient are correlated."""
    rng = np.random.default_rng(seed)
    pid = np.repeat([f"p{i:03d}" for i in range(n_patients)], hours)
    t = np.tile(np.arange(hours, dtype=float), n_patients)
    y_pat = rng.random(n_patients) < 0.4
    y = np.repeat(y_pat, hours).astype(int)
    level = np.repeat(signal * y_pat + rng.normal(0, 1, n_patients), hours)
    p = 1 / (1 + np.exp(-(level + rng.normal(0, 0.2, len(y)))))
    return pid, t, y, np.round(p, 2)


# ---------------------------------------------------------------------------------- weighted metrics
@pytest.mark.parametrize("decimals", [1, 6])          # many ties / almost none
def test_weighted_metrics_equal_sklearn_with_zero_weights_and_ties(decimals):
    rng = np.random.default_rng(decimals)
    n = 150
    y = rng.integers(0, 2, n)
    p = np.clip(np.round(0.3 * y + 0.7 * rng.random(n), decimals), 0.01, 0.99)
    W = rng.integers(0, 4, (8, n)).astype(float)                      # ~25% zero weights
    W[0] = 1.0
    rows = _weighted_metric_rows(y, p, W, threshold=0.5)
    assert set(rows) == set(METRICS)
    pred = p >= 0.5
    for b, w in enumerate(W):
        expected = {
            "auroc": skm.roc_auc_score(y, p, sample_weight=w),
            "auprc": skm.average_precision_score(y, p, sample_weight=w),
            "brier": skm.brier_score_loss(y, p, sample_weight=w),
            "log_loss": skm.log_loss(y, p, sample_weight=w),
            "sensitivity": skm.recall_score(y, pred, sample_weight=w),
            "specificity": skm.recall_score(1 - y, ~pred, sample_weight=w),
            "ppv": skm.precision_score(y, pred, sample_weight=w),
            "npv": skm.precision_score(1 - y, ~pred, sample_weight=w),
        }
        expected["min_se_ppv"] = min(expected["sensitivity"], expected["ppv"])
        for k, v in expected.items():
            assert rows[k][b] == pytest.approx(v, abs=1e-9), (k, b)
    # unit weights give the unweighted point metrics
    full = binary_metrics(y, p, 0.5)
    for k in ("auroc", "auprc", "brier", "sensitivity", "ppv"):
        assert rows[k][0] == pytest.approx(full[k], abs=1e-12)


def test_weighted_metrics_undefined_when_a_class_gets_no_weight():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.2, 0.8, 0.4, 0.6])
    rows = _weighted_metric_rows(y, p, np.array([[1.0, 0, 2, 0], [0, 1, 0, 3]]), threshold=0.5)
    assert np.isnan(rows["auroc"]).all() and np.isnan(rows["auprc"]).all()
    assert rows["brier"][0] == pytest.approx((0.04 + 2 * 0.16) / 3)
    assert np.isnan(rows["ppv"][0]) and rows["ppv"][1] == 1.0


# ---------------------------------------------------------------------------------- ClusterBootstrap
def test_cluster_bootstrap_resamples_patients_not_rows():
    pid, *_ = _hours(n_patients=30, hours=5)
    order = np.random.default_rng(1).permutation(len(pid))
    groups = pid[order]                                               # rows need not be grouped
    boot = ClusterBootstrap(groups, n_bootstrap=70, random_state=3, chunk_size=32)
    assert boot.counts.shape == (70, 30) and boot.counts.dtype == np.int16
    assert (boot.counts.sum(axis=1) == 30).all()                      # n_patients draws per resample
    assert (boot.counts == 0).any(axis=1).all()                       # ... with replacement
    assert np.array_equal(boot.groups(), groups)
    chunks = list(boot.iter_row_weights())
    assert [c.shape for c in chunks] == [(32, 150), (32, 150), (6, 150)] and chunks[0].dtype == np.float64
    W = np.vstack(chunks)
    for j, patient in enumerate(boot.patients):                      # every row carries its patient's count
        assert (W[:, groups == patient] == boot.counts[:, [j]]).all()
    assert np.array_equal(np.vstack(list(boot.iter_row_weights(order=order[::-1], chunk_size=50))),
                          W[:, order[::-1]])
    assert np.array_equal(ClusterBootstrap(groups, 70, 3).counts, boot.counts)
    assert not np.array_equal(ClusterBootstrap(groups, 70, 4).counts, boot.counts)
    with pytest.raises(ValueError):                                  # shared draws are read-only
        boot.counts[0, 0] = 5
    assert ClusterBootstrap.from_config(groups, EvaluationConfig(n_bootstrap=9)).n_bootstrap == 9


@pytest.mark.parametrize("kwargs, match", [
    ({"groups": []}, "at least one row"),
    ({"groups": ["a", None, "b"]}, "missing ids"),
    ({"groups": ["a", "b"], "n_bootstrap": 0}, "n_bootstrap"),
    ({"groups": ["a", "b"], "chunk_size": 0.5}, "chunk_size"),
])
def test_cluster_bootstrap_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClusterBootstrap(**kwargs)


def test_one_resample_equals_metrics_on_duplicated_patients():
    pid, _, y, p = _hours(n_patients=25, hours=4, seed=2)
    checked = 0
    for seed in range(5):
        boot = ClusterBootstrap(pid, n_bootstrap=1, random_state=seed)
        w = next(boot.iter_row_weights())[0].astype(int)
        yy, pp = np.repeat(y, w), np.repeat(p, w)
        if len(np.unique(yy)) < 2:
            continue
        expected = binary_metrics(yy, pp, 0.5)
        ci = cluster_bootstrap_metrics(y, p, 0.5, boot)
        assert set(ci) == set(bootstrap_metrics(y, p, 0.5, bootstrap_indices(len(y), 3)))
        for k in ("auroc", "auprc", "brier", "sensitivity", "specificity", "ppv", "npv", "min_se_ppv"):
            assert ci[k][0] == ci[k][1] == pytest.approx(expected[k], abs=1e-9), k
        checked += 1
    assert checked >= 3


def test_cluster_ci_is_wider_than_row_ci_for_correlated_hours():
    pid, _, y, p = _hours(n_patients=60, hours=20, seed=4)
    row = bootstrap_metrics(y, p, 0.5, bootstrap_indices(len(y), 300, 0))
    clus = cluster_bootstrap_metrics(y, p, 0.5, ClusterBootstrap(pid, 300, 0))
    point = binary_metrics(y, p, 0.5)["auroc"]
    assert clus["auroc"][0] <= point <= clus["auroc"][1]
    # 60 patients, not 1200 independent rows: the honest interval is much wider
    assert clus["auroc"][1] - clus["auroc"][0] > 2.5 * (row["auroc"][1] - row["auroc"][0])


def test_cluster_paired_bootstrap_contract():
    pid, _, y, p = _hours(n_patients=80, hours=6, seed=5, signal=3.0)
    noise = np.random.default_rng(0).random(len(y))
    boot = ClusterBootstrap(pid, 400, 0)
    same = cluster_paired_bootstrap(y, p, p, boot)
    assert same == {"difference": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0}
    better = cluster_paired_bootstrap(y, p, noise, boot)
    assert better["difference"] == pytest.approx(skm.roc_auc_score(y, p) - skm.roc_auc_score(y, noise))
    assert 0 < better["ci_low"] < better["difference"] < better["ci_high"] and better["p_value"] < 0.01
    brier = cluster_paired_bootstrap(y, p, noise, boot, metric="brier", ci_level=0.9)
    assert brier["difference"] == pytest.approx(np.mean((p - y) ** 2) - np.mean((noise - y) ** 2))
    assert brier["ci_high"] < 0
    with pytest.raises(ValueError, match="metric must be one of"):
        cluster_paired_bootstrap(y, p, noise, boot, metric="accuracy")
    with pytest.raises(ValueError, match="built for 480"):
        cluster_paired_bootstrap(y[:-1], p[:-1], noise[:-1], boot)


# ---------------------------------------------------------------------------------- evaluate / compare
def test_evaluate_and_compare_with_clusters():
    pid, t, y, p = _hours(n_patients=50, hours=8, seed=6, signal=2.0)
    q = np.clip(p + np.random.default_rng(1).normal(0, 0.3, len(p)), 0, 1)
    boot = ClusterBootstrap(pid, 200, 0)
    cfg = EvaluationConfig(n_bootstrap=200)
    a = evaluate("a", y, p, 0.5, config=cfg, label="A", clusters=boot, times=t)
    b = evaluate("b", y, q, 0.5, pid, config=cfg, label="B", clusters=boot, times=t)
    assert a.ci == cluster_bootstrap_metrics(y, p, 0.5, boot)
    assert a.ci != evaluate("a", y, p, 0.5, config=cfg).ci
    assert np.array_equal(a.patient_ids, pid) and np.array_equal(a.times, t)
    s = a.summary()
    assert (s["n_hours"], s["n_patients"], s["n_positive"]) == (400, 50, int(y.sum()))
    assert s["n_positive_patients"] == len(set(pid[y == 1]))
    stay = evaluate("a", y, p, 0.5, config=EvaluationConfig(n_bootstrap=0)).summary()
    assert "n_hours" not in stay and stay["n_patients"] == 400
    c = compare(a, b, cfg, clusters=boot)
    pb = cluster_paired_bootstrap(y, p, q, boot)
    assert np.isnan(c.p_delong) and c.p_bootstrap == pb["p_value"]
    assert (c.difference, c.ci_low, c.ci_high) == (pb["difference"], pb["ci_low"], pb["ci_high"])
    assert c.sentence.startswith(f"A vs B: {pb['difference']:+.3f} AUROC [{pb['ci_low']:+.3f}, ")
    assert compare(a, b, cfg).p_delong < 1                           # the stay path is untouched
    with pytest.raises(ValueError, match="both idx"):
        evaluate("a", y, p, 0.5, clusters=boot, idx=bootstrap_indices(len(y), 5))
    with pytest.raises(ValueError, match="same patients as the ClusterBootstrap"):
        evaluate("a", y, p, 0.5, np.roll(pid, 1), clusters=boot)
    with pytest.raises(ValueError, match="times must give one hour per row"):
        evaluate("a", y, p, 0.5, clusters=boot, times=t[:-1])
    with pytest.raises(ValueError, match="times differ"):
        compare(a, evaluate("b", y, q, 0.5, pid, clusters=boot, times=t + 1), clusters=boot)


# ---------------------------------------------------------------------------------- alarms
def _alarm_example():
    rows = [  # patient, hour, y, risk
        *[("A", h, int(h >= 3), r) for h, r in zip(range(8), [.1, .1, .9, .2, .8, .3, .7, .1])],
        *[("B", h, int(h >= 2), r) for h, r in zip(range(4), [.1, .2, .9, .9])],
        *[("C", h, int(h == 13), r) for h, r in zip(range(10, 14), [.1, .6, .6, .2])],
        *[("D", h, 0, r) for h, r in zip(range(6), [.1, .9, .1, .1, .1, .1])],
        *[("E", h, 0, .1) for h in range(5)],
    ]
    df = pd.DataFrame(rows, columns=["pid", "hour", "y", "risk"]).sample(frac=1, random_state=0)
    return df, {"A": 5.0, "C": np.nan, "D": 3.0}   # B absent, C unknown, D negative (ignored)


def test_alarm_metrics_hand_example():
    df, onsets = _alarm_example()
    m = alarm_metrics(df["pid"], df["hour"], df["y"], df["risk"], 0.5, onsets)
    # positive stays A, B, C. Onsets: A 5 (given), B 2 and C 13 (first y == 1).
    # Alarms before onset: A at 2 and 4 (first 2 -> 3 h warning), B none (its alarms at 2, 3 are not
    # before onset 2), C at 11, 12 (2 h). Alarm hours 8 of 27; with y == 0: A@2, C@11, C@12, D@1 = 4,
    # so 4 / (27 / 24) false alarms per patient-day.
    assert m == {"positive_stays": 3, "alarmed_before_onset": pytest.approx(2 / 3),
                 "median_warning_hours": 2.5, "false_alarms_per_patient_day": pytest.approx(96 / 27),
                 "alarm_hours_share": pytest.approx(8 / 27), "n_patients": 5, "n_hours": 27}
    # without A's known onset its first positive hour (3) is used: warning 3 - 2 = 1 h
    m2 = alarm_metrics(df["pid"], df["hour"], df["y"], df["risk"], 0.5, pd.Series({"C": 13.0}))
    assert m2["median_warning_hours"] == 1.5 and m2["alarmed_before_onset"] == pytest.approx(2 / 3)
    none = alarm_metrics(df["pid"], df["hour"], df["y"], df["risk"], 0.95)
    assert none["alarmed_before_onset"] == 0 and np.isnan(none["median_warning_hours"])
    assert none["false_alarms_per_patient_day"] == 0 and none["alarm_hours_share"] == 0


@pytest.mark.parametrize("change, match", [
    ({"onsets": {"A": "soon"}}, "onsets"),
    ({"times": [0.0, np.nan, 2.0]}, "finite"),
    ({"patient_ids": ["a", "a"]}, "one value per row"),
    ({"patient_ids": ["a", None, "b"]}, "missing ids"),
])
def test_alarm_metrics_bad_inputs(change, match):
    args = {"patient_ids": ["A", "A", "B"], "times": [0.0, 1.0, 0.0], "y_true": [0, 1, 0],
            "risk": [0.9, 0.1, 0.2], "threshold": 0.5, "onsets": None}
    with pytest.raises(ValueError, match=match):
        alarm_metrics(**{**args, **change})


def test_alarm_intervals_equal_the_metrics_recomputed_on_each_resample():
    """Each resample's alarm metrics, computed by alarm_metrics on the expanded rows, give the same intervals."""
    from core.evaluation.alarms import alarm_intervals, alarm_metrics
    from core.evaluation.cluster import ClusterBootstrap
    rng = np.random.default_rng(5)
    pid = np.repeat([f"s{i:02d}" for i in range(40)], 12)
    t = np.tile(np.arange(12.0), 40)
    y = np.zeros(pid.size, int)
    onset_at = rng.integers(4, 12, 40)
    for i in range(0, 40, 3):
        y[(pid == f"s{i:02d}") & (t >= onset_at[i])] = 1
    risk = np.clip(0.3 * y + rng.uniform(0, 0.7, pid.size), 0, 1)
    boot = ClusterBootstrap(pid, 60, random_state=2)
    ci = alarm_intervals(pid, t, y, risk, 0.5, boot)
    per = {k: [] for k in ("alarmed_before_onset", "median_warning_hours", "false_alarms_per_patient_day")}
    for counts in boot.counts:
        rows = np.concatenate([np.flatnonzero(pid == p) for p, c in zip(boot.patients, counts) for _ in range(c)])
        new_ids = np.concatenate([[f"{p}#{j}"] * 12 for p, c in zip(boot.patients, counts) for j in range(c)])
        m = alarm_metrics(new_ids, t[rows], y[rows], risk[rows], 0.5)
        for k in per:
            per[k].append(m[k])
    for k, v in per.items():
        v = np.asarray(v)
        v = v[np.isfinite(v)]
        np.testing.assert_allclose(ci[f"{k}_ci"], np.percentile(v, [2.5, 97.5]), rtol=1e-12)


def test_an_online_runs_leaderboard_shows_the_alarm_metrics_with_intervals(tmp_path):
    from core.runs.store import RunSummary, load_run, save_run
    from core.training.experiment import run_experiment
    from tests.helpers.cohorts import make_online_cohort
    res = run_experiment(make_online_cohort(80, seed=3), ["lr"], preset="test")
    extra = res.test["lr"].extra
    assert len(extra["alarmed_before_onset_ci"]) == 2 and len(extra["false_alarms_per_patient_day_ci"]) == 2
    save_run(res, tmp_path / "r")
    board = RunSummary.from_run(load_run(tmp_path / "r")).leaderboard()
    lo, hi = extra["false_alarms_per_patient_day_ci"]
    assert board.loc[0, "false alarms / patient-day 95% CI"] == f"[{lo:.2f}, {hi:.2f}]"
    assert board.loc[0, "false alarms / patient-day"] == extra["false_alarms_per_patient_day"]
