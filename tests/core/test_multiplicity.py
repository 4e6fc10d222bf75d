"""core.evaluation.multiplicity.holm against statsmodels' implementation and by hand."""
import numpy as np
from hypothesis import given, settings, strategies as st
from statsmodels.stats.multitest import multipletests

from core.evaluation.multiplicity import holm


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, 2*0.03, max(0.06, 1*0.04)
    np.testing.assert_allclose(holm([0.04, 0.01, 0.03]), [0.06, 0.03, 0.06])
    assert holm([]).size == 0 and np.isnan(holm([np.nan])).all()
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]


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
