"""core.analysis.importance: grouped permutation importance on validation patients, for stays and patient-hours."""
import numpy as np
import pytest

from core.analysis.importance import importance_shares, missing_share
from core.training.experiment import run_experiment
from tests.helpers.cohorts import make_online_cohort, make_tiny_cohort


@pytest.mark.parametrize("cohort", [make_tiny_cohort(160, seed=1), make_online_cohort(80, seed=2)],
                         ids=["stay", "online"])
def test_every_model_and_variable_has_an_importance_and_shares_add_up(cohort):
    res = run_experiment(cohort, ["lr", "gru"], preset="test")
    imp = res.extra["importance"]
    variables = list(res.builder.variables_) + list(res.builder.static_columns_)
    for name in ("lr", "gru"):
        assert set(imp[name]) == set(variables) and all(v >= 0 for v in imp[name].values())
        shares = importance_shares(imp[name])
        assert sum(shares.values()) == pytest.approx(1.0) or sum(imp[name].values()) == 0
        assert missing_share(imp[name], variables) == pytest.approx(sum(shares.values()))
        assert missing_share(imp[name], []) == 0


def test_the_variable_the_outcome_depends_on_matters_most():
    """In the tiny cohort the risk rises with heart rate, lactate and age; temperature only follows severity
    weakly: permuting HR or Lactate moves logistic regression's risk more than permuting Temp."""
    res = run_experiment(make_tiny_cohort(300, seed=4), ["lr"], preset="test")
    imp = res.extra["importance"]["lr"]
    assert max(imp["HR"], imp["Lactate"]) > imp["Temp"]
    assert np.isfinite(list(imp.values())).all()
