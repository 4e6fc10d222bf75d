"""Patient timeline: find a patient, see the actual observations over time, static attributes and outcome.

With an online run open on the Compare page, each model's risk hour by hour sits above the vitals, and
the positive label window is shaded.
"""
import streamlit as st

from app import cache, state
from app.components import require_cohort
from core import explore, plots
from core.exceptions import CoreError
from core.plausibility import describe_value

st.title("Patient timeline")
cohort = require_cohort()

c = st.columns([2, 1, 3])
query = c[0].text_input("Find patient id (contains)", key="timeline.query")
outcome = c[1].selectbox("Outcome", ["all", "positive", "negative"], key="timeline.outcome",
                         disabled=cohort.labels is None)
ids = explore.find_patients(cohort, query, outcome, limit=None)
if not ids:
    st.warning(f"No patient id contains {query!r} with outcome {outcome}. Clear the search or change the filter.")
    st.stop()
if st.session_state.get("timeline.patient") not in ids:
    st.session_state["timeline.patient"] = ids[0]


def _step(k: int) -> None:
    i = ids.index(st.session_state["timeline.patient"]) if st.session_state["timeline.patient"] in ids else 0
    st.session_state["timeline.patient"] = ids[(i + k) % len(ids)]


pid = c[2].selectbox(f"Patient ({len(ids):,} matching)", ids, key="timeline.patient")
b = st.columns([1, 1, 5])
b[0].button("Previous", key="timeline.prev", on_click=_step, args=(-1,), width="stretch",
            help="The previous patient of the list above")
b[1].button("Next", key="timeline.next", on_click=_step, args=(1,), width="stretch",
            help="The next patient of the list above")

events = cohort.patient_events(pid)
label = None if cohort.labels is None else cohort.labels.get(pid)
c = st.columns(6)
c[0].metric("Outcome" + (f" ({cohort.target})" if cohort.target else ""),
            "unlabelled" if label is None else ("positive" if label == 1 else "negative"))
c[1].metric("Observations", f"{len(events):,}")
c[2].metric("Last observation (h)", f"{events['time_hours'].max():.1f}" if len(events) else "n/a")
if pid in cohort.static.index:
    for i, (name, value) in enumerate(cohort.static.loc[pid].items()):
        if i < 3:
            c[3 + i].metric(name, describe_value(name, value))
    st.text("Static attributes: " + ", ".join(f"{k} {describe_value(k, v)}" for k, v in cohort.static.loc[pid].items()))

present = sorted(events["variable"].astype(str).unique())
chosen = st.multiselect("Variables", present, default=explore.default_timeline_variables(cohort, pid),
                        key=f"timeline.vars.{pid}")
summary = st.session_state.get(state.COMPARE_SUMMARY)
risk, thresholds = None, None
if summary is not None and summary.online and summary.folder is not None:
    try:
        risk = cache.patient_risk(str(summary.folder), cohort, pid)
        thresholds = {n: ev.threshold for n, ev in summary.results.items() if n in risk.columns}
        st.caption(f"Risk per hour of every model of the run open on Compare ({summary.folder.name}); each hour uses "
                   "data up to and including it. Dotted lines: each model's threshold. Shaded: hours labelled 1.")
    except CoreError as err:
        st.warning(f"The open run cannot score this patient: {err}")
elif cohort.is_online:
    st.caption("Train or open an online run on the Compare page to see each model's risk hour by hour here. "
               "Shaded: hours labelled 1.")
st.plotly_chart(plots.timeline_figure(events, chosen, title=f"Patient {pid}: markers are actual observations",
                                      risk=risk, shade=explore.label_windows(cohort, pid), thresholds=thresholds),
                width="stretch")
with st.expander("Raw observations"):
    st.dataframe(events, hide_index=True)
