"""core.evaluation.cv: the CV leaderboard and the corrected resampled t-test, by hand."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core.evaluation.cv import cv_summary, order_verdict


def _folds(diffs, base=0.80):
    rows = []
    for i, d in enumerate(diffs):
        rows += [{"model": "gru", "fold": i % 5, "repeat": i // 5, "auroc": base + d, "auprc": 0.3},
                 {"model": "lr", "fold": i % 5, "repeat": i // 5, "auroc": base, "auprc": 0.2},
                 {"model": "rnn", "fold": i % 5, "repeat": i // 5, "auroc": base - 0.05, "auprc": 0.2}]
    return pd.DataFrame(rows)


def test_summary_is_mean_and_sd_over_every_fold():
    f = _folds([0.01, 0.02, 0.0, 0.03, 0.01, 0.02, 0.02, 0.0, 0.01, 0.03])
    s = cv_summary(f).set_index("model")
    assert s.loc["gru", "auroc_mean"] == pytest.approx(f[f.model == "gru"].auroc.mean())
    assert s.loc["gru", "auroc_std"] == pytest.approx(f[f.model == "gru"].auroc.std(ddof=1))
    assert s.loc["gru", "n_folds"] == 10 and list(s.index) == ["gru", "lr", "rnn"]


def test_the_verdict_is_the_nadeau_bengio_test_by_hand():
    diffs = np.array([0.01, 0.02, 0.0, 0.03, 0.01, 0.02, 0.02, 0.0, 0.01, 0.03])
    v = order_verdict(_folds(diffs), {"gru", "rnn"}, n_folds=5)
    assert (v["sequence"], v["classical"], v["n"], v["wins"]) == ("gru", "lr", 10, 8)
    se = np.sqrt(1 / 10 + 1 / 4) * diffs.std(ddof=1)
    assert v["p_value"] == pytest.approx(2 * stats.t.sf(diffs.mean() / se, 9))
    assert v["ci_low"] == pytest.approx(diffs.mean() - stats.t.ppf(0.975, 9) * se)
    assert v["sentence"].startswith("Across 10 folds, gru minus lr: +0.015 AUROC")
    assert order_verdict(_folds(diffs)[lambda d: d.model != "lr"], {"gru", "rnn"}, 5) is None
