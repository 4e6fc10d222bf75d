"""Explain models: which variables (and, for recurrent networks, which hours) drive each model of the current
run. Nothing is computed until a click: one model at a time, kept with the run (page -> ExplainRequest -> runner)."""
import streamlit as st

from app import context, jobs, workspace
from app.components import plain, require_cohort, show_error
from core import plots
from core.exceptions import CoreError
from core.analysis.explain import compare_importance, estimate_explain_seconds, importance_agreement
from core.models import registry
from core.service import DEFAULT_PRESET, EXPLAIN_QUICK_MODELS, ExplainRequest

TRAIN_LABEL = "Train quick models now"
E2E_CLICKS = ["Train quick models now"]

st.title("Explain models")
cohort = require_cohort()
run = context.run_on_data(cohort)
if run is None:
    st.info("No run on this data yet. Train models on the **Compare** page, or train a quick set "
            f"({', '.join(registry.get(n).label for n in EXPLAIN_QUICK_MODELS)}) here.")
    st.page_link("app/pages/compare.py", label="Open the Compare page", icon=":material/leaderboard:")
if st.button(TRAIN_LABEL, key="explain.train", type="primary" if run is None else "secondary"):
    if cohort.labels is None:
        st.warning("This data has no outcome labels, so no model can be trained. Add labels on the Data page.")
        st.stop()
    jobs.submit("explain.train", jobs.training_request(EXPLAIN_QUICK_MODELS, DEFAULT_PRESET, 0), cohort)
info, trained = jobs.follow("explain.train", ("train",))
if trained is not None:
    context.set_current_run(trained.folder)
    run = context.run_on_data(cohort)
if run is None:
    st.stop()

path = run["path"]
st.caption(f"Run {plain(run['name'])}: its models, explained on its own test patients.")
online = run.get("task") == "online"
c = st.columns([2, 1, 1])
model = c[0].selectbox("Model", list(run["models"]), key=f"explain.model.{run['name']}",
                       format_func=lambda n: registry.get(n).label)
n = int(c[1].number_input("Test patients", 10, 500, 50, step=10, key="explain.n",
                          help="Patients used for the global importance (more = slower, steadier)"))
hour = float(c[2].number_input("Hour of the stay", 1, 2000, 24, key="explain.hour",
                               help="Online run: each test patient's risk at this hour is explained, from data "
                                    "up to it.")) if online else None
try:
    saved = workspace.saved_explanations(path)
    result = workspace.load_explanation(path, model, n, hour)
except CoreError as err:
    show_error(err)
    st.stop()
if result is None:
    guess = estimate_explain_seconds(workspace.explain_records(), model, n)
    st.caption(f"Explaining {registry.get(model).label} on {n} test patients: "
               + (f"about {guess:,.0f} s (from earlier explanations on this server)." if guess is not None
                  else "no earlier explanation of this model to estimate the time from."))
    if st.button("Explain this model", type="primary", key="explain.go"):
        try:
            jobs.submit("explain.global", ExplainRequest(run=path, model=model, n_patients=n, hour=hour), cohort)
        except (CoreError, ValueError) as err:
            show_error(err)
info, done = jobs.follow("explain.global", ("explain",))
if done is not None:
    st.rerun()                       # the result is a file of the run now: read it from there
same = [r for r in saved if r["n_patients"] == n and r.get("hour") == hour]
results = [workspace.load_explanation(path, r["model"], n, hour) for r in same]
results = [r for r in results if r is not None]
if not results:
    st.stop()

st.subheader("What each model relies on")
st.caption(f"{len(results)} of the run's {len(run['models'])} models explained on {n} test patients"
           + (f" at hour {hour:g}" if online else "") + "; pick another model above and press **Explain this "
           "model** to add it.")
table = compare_importance(results)
st.plotly_chart(plots.importance_figure(table), width="stretch")
if len(results) > 1:
    st.plotly_chart(plots.agreement_figure(importance_agreement(table)), width="stretch")
with st.expander("How each model was explained"):
    st.dataframe([{"model": r.label or r.model_name, "explains": r.output, "method": r.method,
                   "seconds": round(r.seconds, 2), "additivity error": f"{r.additivity_error:.2g}"} for r in results],
                 hide_index=True)
for r in results:
    if r.is_time_resolved:
        st.plotly_chart(plots.time_importance_figure(r), width="stretch")

if result is None:
    st.stop()
st.subheader("One patient")
pid = st.selectbox("Patient (test set)", list(result.patient_ids), key="explain.patient")
at = None
if online:
    hours = workspace.patient_risk(path, cohort, pid)["time_hours"].tolist()
    at = st.select_slider("Hour to explain", hours, value=hours[-1] if hour not in hours else hour,
                          key=f"explain.at.{pid}", help="The patient-hour whose risk is explained")
risk, local = workspace.explain_patient(path, cohort, (model,), pid, at)
one = local[0]
if one.is_time_resolved:
    st.plotly_chart(plots.patient_attribution_figure(cohort.patient_events(pid), risk, one, pid), width="stretch")
else:
    st.plotly_chart(plots.waterfall_figure(one, pid), width="stretch")
