"""Cohort coverage counts each variable once, never above 100%, with units."""
import numpy as np
import pandas as pd

from core.data.cohort import make_cohort
from core.data.explore import coverage_by_variable
from core.plots import coverage_figure


def test_a_variable_both_static_and_series_is_counted_once():
    ids = [f"p{i:02d}" for i in range(20)]
    ev = pd.DataFrame([(p, float(h), "Weight", 80.0) for p in ids[:10] for h in range(2)] +
                      [(p, 1.0, "HR", 70.0) for p in ids], columns=["patient_id", "time_hours", "variable", "value"])
    static = pd.DataFrame({"Weight": [np.nan] * 5 + [75.0] * 15}, index=pd.Index(ids, name="patient_id"))
    cov = coverage_by_variable(make_cohort(ev, static, None)).set_index("variable")
    assert cov.loc["Weight", "kind"] == "both" and cov.loc["Weight", "coverage"] == 1.0   # 10 series + 15 static, 5 shared
    assert cov.loc["HR", "unit"] == "bpm"
    assert (cov["coverage"] <= 1).all()
    fig = coverage_figure(cov.reset_index())
    assert max(max(t.x) for t in fig.data) <= 1.0
    assert "HR (bpm)" in set(np.concatenate([t.y for t in fig.data]))


def test_timeline_panels_carry_units_and_the_normal_band():
    from core.plots import timeline_figure
    ev = pd.DataFrame({"time_hours": [0.0, 1.0, 2.0], "variable": ["HR", "HR", "Mystery"], "value": [70, 120, 3]})
    fig = timeline_figure(ev, ["HR", "Mystery"])
    assert [a.text for a in fig.layout.annotations] == ["HR (bpm)", "Mystery"]
    bands = [(s.y0, s.y1) for s in fig.layout.shapes]
    assert bands == [(60, 100)]                              # HR only: Mystery has no known range


def test_skewed_distributions_use_a_log_scale():
    from core.plots import distribution_figure
    rng = np.random.default_rng(0)
    skewed = pd.DataFrame({"value": np.exp(rng.normal(0, 2.5, 400)), "outcome": ["negative"] * 400})
    plain = pd.DataFrame({"value": rng.normal(80, 10, 400), "outcome": ["negative"] * 400})
    assert distribution_figure(skewed, "Urine", "mean").layout.yaxis.type == "log"
    assert distribution_figure(plain, "HR", "mean").layout.yaxis.type != "log"
    assert "HR (bpm)" in distribution_figure(plain, "HR", "mean").layout.yaxis.title.text


def test_every_cohort_chart_lists_the_variables_in_one_order_and_labels_each():
    from tests.helpers.cohorts import make_tiny_cohort
    from core.data.explore import missingness_by_hour, sampling_intervals, variable_order
    from core.plots import missingness_figure, sampling_figure
    cohort = make_tiny_cohort(120, seed=2)
    order = variable_order(cohort)
    cov = coverage_by_variable(cohort)
    assert cov["coverage"].is_monotonic_decreasing and cov["variable"].tolist() == order
    series = [v for v in order if v in cohort.series_variables]
    assert missingness_by_hour(cohort).index.tolist() == series
    samp = sampling_intervals(cohort)["variable"].tolist()
    assert samp == [v for v in order if v in samp]
    fig = coverage_figure(cov)
    assert list(fig.layout.yaxis.ticktext)[::-1][0].startswith(order[0])          # the most covered on top
    assert len(sampling_figure(sampling_intervals(cohort)).layout.yaxis.ticktext) == len(samp)   # every one labelled
    assert len(missingness_figure(missingness_by_hour(cohort)).layout.yaxis.ticktext) == len(series)
