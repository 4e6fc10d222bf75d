"""Every registry model, saved in a run and loaded back, predicts exactly what it predicted before (both task shapes)."""
import numpy as np
import pytest

from core.config import EvaluationConfig, FeatureConfig
from core.training.experiment import run_experiment
from core.models import registry
from core.runs.store import load_run, save_run
from tests.helpers.cohorts import make_online_cohort, make_tiny_cohort

SHAPES = {"stay": (lambda: make_tiny_cohort(n_patients=60, seed=2), FeatureConfig(window_hours=6)),
          "online": (lambda: make_online_cohort(60, seed=2), FeatureConfig(task="online", window_hours=40))}


@pytest.fixture(scope="module", params=list(SHAPES))
def saved(request, tmp_path_factory):
    make, features = SHAPES[request.param]
    cohort = make()
    res = run_experiment(cohort, registry.names(), preset="test", features=features,
                         evaluation=EvaluationConfig(n_bootstrap=0), random_state=0)
    return cohort, res, load_run(save_run(res, tmp_path_factory.mktemp(request.param) / "run"))


@pytest.mark.parametrize("name", registry.names())
def test_saved_model_predicts_bit_for_bit(saved, name):
    cohort, res, run = saved
    ids = res.splits["test"]
    scores = run.score(cohort, ids, models=[name])
    if name == "rf":
        # the forest adds its trees' votes in 2 joblib threads, in whatever order they finish: the sum may
        # differ in the last bit from one call to the next, saved or not (issue 8: one thread rule)
        np.testing.assert_allclose(scores["risk"].to_numpy(), res.test[name].y_proba, rtol=0, atol=1e-15)
    else:
        np.testing.assert_array_equal(scores["risk"].to_numpy(), res.test[name].y_proba)
    assert run.thresholds[name] == res.test[name].threshold
