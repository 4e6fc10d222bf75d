"""Cohort: size, prevalence, coverage, missingness, sampling, sequence lengths, distributions by outcome."""
import streamlit as st

from app import cache
from app.components import require_cohort
from core.data import explore
from core import plots

st.title("Cohort")
cohort = require_cohort()

ov = explore.cohort_overview(cohort)
c = st.columns(6)
c[0].metric("Patients", f"{ov['patients']:,}")
c[1].metric("Observations", f"{ov['events']:,}")
c[2].metric("Variables", f"{ov['time_series_variables']}+{ov['static_attributes']}", help="time series + static attributes")
c[3].metric("Median stay (h)", f"{ov['median_stay_hours']:.1f}")
c[4].metric("Positives", f"{ov.get('positives', 0):,}" if "positives" in ov else "no labels")
if "hourly_prevalence" in ov:          # online: the models predict hours, so the hourly rate leads
    c[5].metric("Positive hours", f"{ov['hourly_prevalence']:.2%}",
                help=f"{ov['positive_hours']:,} of {ov['labelled_hours']:,} labelled hours are positive (target "
                     f"{ov.get('target')}); {ov['prevalence']:.1%} of stays have a positive hour")
else:
    c[5].metric("Prevalence", f"{ov['prevalence']:.1%}" if ov.get("prevalence") is not None else "n/a",
                help=f"share of patients with the outcome (target: {ov.get('target')})")

left, right = st.columns(2)
left.plotly_chart(plots.coverage_figure(cache.coverage(cohort)), width="stretch")
hours = right.slider("Hours shown in the missingness map", 6, 168, 48, step=6, key="cohort.hours")
right.plotly_chart(plots.missingness_figure(cache.missingness(cohort, float(hours))), width="stretch")

left, right = st.columns(2)
left.plotly_chart(plots.sampling_figure(cache.sampling(cohort)), width="stretch")
measure = right.selectbox("Sequence length measure", ["n_events", "hours_with_data", "last_hour"],
                          key="cohort.length", format_func={"n_events": "observations per patient",
                                                            "hours_with_data": "hours with data",
                                                            "last_hour": "time of last observation"}.get)
right.plotly_chart(plots.sequence_length_figure(cache.lengths(cohort), measure), width="stretch")

st.subheader("Distributions by outcome")
c = st.columns([2, 1])
variables = cache.coverage(cohort)["variable"].tolist()       # the order of every chart above: most covered first
var = c[0].selectbox("Variable", variables, key="cohort.var")
stat = c[1].selectbox("Per-patient summary", ["mean", "min", "max", "first", "last"], key="cohort.stat")
st.plotly_chart(plots.distribution_figure(cache.patient_values(cohort, var, stat), var, stat), width="stretch")
