"""core.evaluation.multiplicity.holm against statsmodels' implementation and by hand."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from statsmodels.stats.multitest import multipletests

from core.evaluation.multiplicity import holm


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, 2*0.03, max(0.06, 1*0.04)
    np.testing.assert_allclose(holm([0.04, 0.01, 0.03]), [0.06, 0.03, 0.06])
    assert holm([]).size == 0 and np.isnan(holm([np.nan])).all()
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]


@pytest.mark.slow  # ~15 s (statsmodels takes 30 ms a call); Holm by hand and in a run stay in the default run
@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 1), st.just(float("nan"))), min_size=1, max_size=12))
def test_holm_equals_statsmodels_and_ignores_untestable_comparisons(ps):
    p = np.asarray(ps, dtype=float)
    ours = holm(p)
    finite = np.isfinite(p)
    assert np.isnan(ours[~finite]).all()
    if finite.any():
        _, theirs, _, _ = multipletests(p[finite], method="holm")
        np.testing.assert_allclose(ours[finite], theirs, rtol=1e-12, atol=1e-15)
        assert (ours[finite] >= p[finite] - 1e-15).all()


def test_a_runs_comparisons_are_judged_on_holm_adjusted_p_values():
    from core.evaluation.metrics import ComparisonResult, adjust_for_multiplicity
    raw = [("rnn", 0.028, 0.02), ("gru", 0.004, 0.03), ("svm", 0.6, -0.01), ("lstm", float("nan"), 0.0)]
    comps = [ComparisonResult(n, "gbm", "auroc", d, d - 0.01, d + 0.01, float("nan"), p, "") for n, p, d in raw]
    out = adjust_for_multiplicity(comps, {"rnn": "RNN", "gru": "GRU", "svm": "SVM", "gbm": "gradient boosting"})
    np.testing.assert_allclose([c.p_holm for c in out], holm([0.028, 0.004, 0.6, np.nan]), equal_nan=True)
    assert out[0].sentence.endswith("p=0.028, Holm-adjusted over 3 comparisons p=0.056: no significant difference")
    assert out[1].sentence.endswith("Holm-adjusted over 3 comparisons p=0.012: GRU is significantly better")
    assert out[3].sentence.endswith("p not testable: not testable") and out[3].model_name == "lstm"


def test_a_trained_runs_comparisons_carry_holm():
    from core.training.experiment import run_experiment
    from tests.helpers.cohorts import make_tiny_cohort
    res = run_experiment(make_tiny_cohort(120, seed=2), ["lr", "gbm", "rf"], preset="test")
    ps = [c.p_value for c in res.comparisons]
    np.testing.assert_allclose([c.p_holm for c in res.comparisons], holm(ps))
    assert all("Holm-adjusted over 2 comparisons" in c.sentence for c in res.comparisons if np.isfinite(c.p_value))
    assert all("p_holm" in d for d in res.metrics_dict()["comparisons"])
