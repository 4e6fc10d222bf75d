"""core.evaluation.calibration against statsmodels' logistic GLM (with an offset for calibration-in-the-large)."""
import numpy as np
import pytest
import statsmodels.api as sm

from core.evaluation.calibration import calibration_intercept_slope


@pytest.mark.parametrize("shift, scale", [(0.0, 1.0), (0.8, 1.0), (-0.5, 0.6), (0.3, 1.7)])
def test_intercept_and_slope_equal_statsmodels(shift, scale):
    rng = np.random.default_rng(1)
    lp = rng.normal(-1.5, 1.2, 3000)
    y = (rng.uniform(size=lp.size) < 1 / (1 + np.exp(-(shift + scale * lp)))).astype(int)
    risk = 1 / (1 + np.exp(-lp))
    ours = calibration_intercept_slope(y, risk)
    citl = sm.GLM(y, np.ones((y.size, 1)), family=sm.families.Binomial(), offset=lp).fit().params[0]
    slope = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit().params[1]
    assert ours["calibration_in_the_large"] == pytest.approx(citl, abs=1e-8)
    assert ours["calibration_slope"] == pytest.approx(slope, abs=1e-8)
    assert ours["calibration_slope"] == pytest.approx(scale, abs=0.15)         # recovers the distortion


def test_degenerate_inputs_give_nan_not_an_error():
    assert all(np.isnan(v) for v in calibration_intercept_slope([1, 1, 1], [0.2, 0.5, 0.9]).values())
    out = calibration_intercept_slope([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3])
    assert out["calibration_in_the_large"] == pytest.approx(np.log(0.5 / 0.5) - np.log(0.3 / 0.7))
    assert np.isnan(out["calibration_slope"])
    assert all(np.isnan(v) for v in calibration_intercept_slope([], []).values())
    out = calibration_intercept_slope([0, 1], [0.0, 1.0])                      # clipped away from 0 and 1
    assert np.isfinite(out["calibration_in_the_large"])
