import numpy as np
import pytest
from sklearn import metrics as skm

from core.config import EvaluationConfig, SplitConfig
from core.evaluation.metrics import (binary_metrics, bootstrap_indices, choose_threshold, compare, delong_auc_variance,
                             delong_test, describe_comparison, evaluate, paired_bootstrap, threshold_metrics)
from core.evaluation.bootstrap import _auprc_rows, _auroc_rows
from core.exceptions import CohortError
from core.training.experiment import run_experiment
from core.training.protocol import split_by_patient


def test_metrics_hand_computed():
    y = [0, 0, 1, 1]
    p = [0.1, 0.4, 0.35, 0.8]
    m = binary_metrics(y, p, threshold=0.3)
    assert m["auroc"] == pytest.approx(0.75)                       # 3 of 4 pairs ordered
    assert m["auprc"] == pytest.approx((1 / 1 + 2 / 3) / 2)         # precision at each positive
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.6, 0.35, 0.8])))
    # threshold 0.3: predicted positive = 0.4, 0.35, 0.8 -> TP 2, FP 1, TN 1, FN 0
    assert (m["sensitivity"], m["specificity"], m["ppv"], m["npv"]) == pytest.approx((1.0, 0.5, 2 / 3, 1.0))
    assert m["min_se_ppv"] == pytest.approx(2 / 3)
    assert np.isnan(threshold_metrics(y, p, 0.99)["ppv"])


def test_vectorised_rows_match_sklearn_with_ties():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = np.round(rng.random(200), 1)                                # many ties
    assert _auroc_rows(y[None], p[None])[0] == pytest.approx(skm.roc_auc_score(y, p))
    assert _auprc_rows(y[None].astype(float), p[None])[0] == pytest.approx(skm.average_precision_score(y, p))


def test_delong_known_values():
    # Hand example: y = [0,0,1,1], p = [.1,.4,.35,.8] -> AUC .75.
    # Placements: positives V10 = [.5, 1]; negatives V01 = [1, .5] -> var = .125/2 + .125/2 = .125
    auc, var = delong_auc_variance([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert auc == pytest.approx(0.75) and var == pytest.approx(0.125)
    # Brute-force DeLong on random data (independent loop implementation)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    a, b = rng.random(60) + 0.5 * y, rng.random(60) + 0.2 * y

    def placements(s):
        pos, neg = s[y == 1], s[y == 0]
        psi = lambda u, v: 1.0 if u > v else 0.5 if u == v else 0.0  # noqa: E731
        v10 = np.array([np.mean([psi(x, z) for z in neg]) for x in pos])
        v01 = np.array([np.mean([psi(x, z) for x in pos]) for z in neg])
        return v10, v01

    (a10, a01), (b10, b01) = placements(a), placements(b)
    m, n = len(a10), len(a01)
    var = (np.var(a10, ddof=1) + np.var(b10, ddof=1) - 2 * np.cov(a10, b10)[0, 1]) / m + \
          (np.var(a01, ddof=1) + np.var(b01, ddof=1) - 2 * np.cov(a01, b01)[0, 1]) / n
    d = delong_test(y, a, b)
    assert d["difference"] == pytest.approx(a10.mean() - b10.mean())
    assert d["se"] == pytest.approx(np.sqrt(var))
    assert delong_test(y, a, a)["p_value"] == 1.0


def test_bootstrap_ci_contains_point_and_is_seeded():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + 0.7 * rng.random(300), 0, 1)
    r1 = evaluate("m", y, p, 0.5, config=EvaluationConfig(n_bootstrap=300))
    r2 = evaluate("m", y, p, 0.5, config=EvaluationConfig(n_bootstrap=300))
    for k in ("auroc", "auprc", "brier", "sensitivity"):
        lo, hi = r1.ci[k]
        assert lo <= r1.metrics[k] <= hi
    assert r1.ci == r2.ci
    idx = bootstrap_indices(300, 300, 0)
    pb = paired_bootstrap(y, p, p, idx)
    assert pb["difference"] == 0 and pb["p_value"] == 1.0


def test_threshold_rules():
    y = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    t = choose_threshold(y, p, "se_ppv")
    best = max(threshold_metrics(y, p, c)["min_se_ppv"] for c in p)
    assert threshold_metrics(y, p, t)["min_se_ppv"] == pytest.approx(best) and t == pytest.approx(0.5)
    y2 = np.array([0, 0, 0, 1, 0, 1, 0, 1])                         # here Se and PPV meet exactly
    m = threshold_metrics(y2, p, choose_threshold(y2, p, "se_ppv"))
    assert m["sensitivity"] == pytest.approx(m["ppv"])
    assert choose_threshold(y, p, "sensitivity", 0.99) == pytest.approx(0.5)
    assert choose_threshold(y, p, "youden") == pytest.approx(0.5)
    with pytest.raises(ValueError, match="threshold_rule"):
        choose_threshold(y, p, "magic")


def test_comparison_sentence():
    s = describe_comparison("GRU", "gradient boosting", -0.009, -0.021, 0.002, 0.12)
    assert s == "GRU vs gradient boosting: -0.009 AUROC [-0.021, +0.002], p=0.120: no significant difference"
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    good, bad = evaluate("a", y, y * 0.6 + 0.4 * rng.random(200), 0.5, label="A"), \
        evaluate("b", y, rng.random(200), 0.5, label="B")
    c = compare(good, bad, EvaluationConfig(n_bootstrap=200))
    assert c.p_delong < 0.05 and c.ci_low > 0 and "significantly better" in c.sentence


def test_split_is_stratified_disjoint_and_complete(tiny_cohort):
    s = split_by_patient(tiny_cohort, SplitConfig(validation_size=0.2, test_size=0.2))
    all_ids = np.concatenate(list(s.values()))
    assert len(all_ids) == len(set(all_ids)) == len(tiny_cohort.labelled_ids)
    with pytest.raises(ValueError, match="test_size"):
        SplitConfig(test_size=1.5)


def test_split_needs_labels(tiny_cohort):
    from dataclasses import replace
    with pytest.raises(CohortError, match="labels"):
        split_by_patient(replace(tiny_cohort, labels=None))


def test_run_experiment_end_to_end(tiny_cohort):
    calls = []
    res = run_experiment(tiny_cohort, ["lr", "gbm", "gru"], preset="test",
                         evaluation=EvaluationConfig(n_bootstrap=50),
                         progress=lambda msg, f: calls.append((msg, f)))
    assert set(res.test) == {"lr", "gbm", "gru"} and res.reference in ("lr", "gbm")
    assert len(res.comparisons) == 2
    fracs = [f for _, f in calls]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0 and any("epoch" in m for m, _ in calls)
    test_ids = set(res.splits["test"])
    for ev in res.test.values():
        assert set(ev.patient_ids) == test_ids and 0 <= ev.threshold <= 1
    assert set(res.splits["train"]).isdisjoint(test_ids)
    md = res.metrics_dict()["models"]["gru"]
    assert {"auroc", "auprc", "brier", "threshold", "train_seconds", "auroc_ci"} <= set(md)


def test_cross_validate_reports_every_fold(tiny_cohort):
    from core.training.experiment import cross_validate
    df = cross_validate(tiny_cohort, ["lr", "gbm"], preset="test", n_folds=2)
    assert len(df) == 4 and set(df["model"]) == {"lr", "gbm"} and df["auroc"].between(0, 1).all()
    with pytest.raises(ValueError, match="n_folds"):
        cross_validate(tiny_cohort, ["lr"], n_folds=1)
