"""core.evaluation.subgroups: groups that add up, AUROCs and intervals against an independent computation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from core.config import EvaluationConfig
from core.evaluation.bootstrap import bootstrap_indices
from core.evaluation.metrics import evaluate
from core.evaluation.subgroups import COLUMNS, assign_groups, subgroup_metrics
from core.exceptions import CohortError


def _scored(n=600, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.array([f"p{i:04d}" for i in range(n)])
    static = pd.DataFrame({"Gender": rng.integers(0, 2, n).astype(float), "Age": rng.uniform(16, 95, n),
                           "ICUType": rng.integers(1, 5, n).astype(float)}, index=ids)
    static.iloc[::25, 0] = np.nan
    sev = rng.normal(size=n) + 0.4 * static["Gender"].fillna(0).to_numpy()
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(sev - 1.2)))).astype(int)
    risk_a = 1 / (1 + np.exp(-(sev + rng.normal(0, 1, n) - 1.2)))
    risk_b = 1 / (1 + np.exp(-(0.5 * sev - 1)))
    results = {"lr": evaluate("lr", y, risk_a, 0.3, patient_ids=ids, label="logistic regression",
                              config=EvaluationConfig(n_bootstrap=0)),
               "gru": evaluate("gru", y, risk_b, 0.25, patient_ids=ids, label="GRU", config=EvaluationConfig(n_bootstrap=0))}
    return results, static, y


def test_groups_are_decoded_banded_and_add_up():
    results, static, y = _scored()
    g = assign_groups(static)
    assert set(g["Gender"]) == {"female", "male", "unknown"}
    assert set(g["ICUType"]) == {"coronary care unit", "cardiac surgery recovery unit", "medical ICU", "surgical ICU"}
    assert set(g["Age"]) == {"under 18", "18-39", "40-59", "60-79", "80 and over"}
    table = subgroup_metrics(results, static, config=EvaluationConfig(n_bootstrap=200))
    assert list(table.columns) == COLUMNS
    for (_, _), d in table.groupby(["model", "attribute"]):
        assert d["n"].sum() == 600 and d["n_positive"].sum() == y.sum()
    assert table[table["group"] == "unknown"]["attribute"].unique().tolist() == ["Gender"]
    assert table["small"].equals((table["n"] < 50) | (table["n_positive"] < 10))


def test_auroc_and_its_interval_against_sklearn_on_the_same_resamples():
    results, static, y = _scored()
    config = EvaluationConfig(n_bootstrap=300, random_state=4)
    table = subgroup_metrics(results, static, ["Gender"], config=config)
    ev = results["lr"]
    groups = assign_groups(static, ["Gender"])["Gender"].reindex(ev.patient_ids).to_numpy()
    for level in ("female", "male"):
        m = groups == level
        yy, pp = ev.y_true[m], ev.y_proba[m]
        row = table[(table["model"] == "logistic regression") & (table["group"] == level)].iloc[0]
        assert row["auroc"] == pytest.approx(roc_auc_score(yy, pp), abs=1e-12)
        idx = bootstrap_indices(len(yy), 300, 4)
        aucs = [roc_auc_score(yy[i], pp[i]) for i in idx if 0 < yy[i].sum() < len(i)]
        assert (row["auroc_low"], row["auroc_high"]) == pytest.approx(tuple(np.percentile(aucs, [2.5, 97.5])), abs=1e-9)
        pred = pp >= ev.threshold
        assert row["sensitivity"] == pytest.approx(pred[yy == 1].mean())
        assert row["ppv"] == pytest.approx(yy[pred].mean())
        assert row["observed_expected"] == pytest.approx(yy.mean() / pp.mean())


def test_patient_hours_count_patients_and_resample_them_whole():
    rng = np.random.default_rng(2)
    pid = np.repeat([f"s{i:03d}" for i in range(120)], 10)
    y = np.zeros(pid.size, int)
    y[np.arange(pid.size) % 10 >= 8] = rng.integers(0, 2, 120).repeat(2)
    risk = np.clip(0.2 + 0.5 * y + rng.normal(0, 0.2, pid.size), 0, 1)
    ev = evaluate("gru", y, risk, 0.5, patient_ids=pid, times=np.tile(np.arange(10.0), 120),
                  config=EvaluationConfig(n_bootstrap=0))
    static = pd.DataFrame({"Gender": np.arange(120) % 2}, index=[f"s{i:03d}" for i in range(120)]).astype(float)
    table = subgroup_metrics({"gru": ev}, static, config=EvaluationConfig(n_bootstrap=100))
    assert table["n"].tolist() == [60, 60]
    positives = pd.Series(y, index=pid).groupby(level=0).max()
    assert table["n_positive"].sum() == positives.sum()
    assert (table["auroc_low"] <= table["auroc"]).all() and (table["auroc"] <= table["auroc_high"]).all()


def test_an_unknown_attribute_is_a_message():
    results, static, _ = _scored(60)
    with pytest.raises(CohortError, match="No static attribute 'Sex'.*Gender, Age, ICUType"):
        subgroup_metrics(results, static, ["Sex"])
