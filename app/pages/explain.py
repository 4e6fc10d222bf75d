"""Explain models: which variables (and, for recurrent networks, which hours) drive each model's risk."""
import streamlit as st

from app import cache, jobs, state
from app.components import require_cohort
from core import plots
from core.explain import compare_importance, importance_agreement
from core.models import registry

TRAIN_LABEL = "Train quick models now"
E2E_CLICKS = ["Train quick models now"]

st.title("Explain models")
cohort = require_cohort()

summary = st.session_state.get(state.COMPARE_SUMMARY)
paths = [str(summary.folder)] if summary is not None and summary.folder is not None else []
paths += [r["path"] for r in cache.explain_runs(cohort) if r["path"] not in paths]
notice = st.empty()
if not paths:
    with notice.container():
        st.info("No models trained on this data yet. Train them on the **Compare** page, or train a quick set "
                f"({', '.join(registry.get(n).label for n in cache.EXPLAIN_QUICK_MODELS)}) here.")
        st.page_link("app/pages/compare.py", label="Open the Compare page", icon=":material/leaderboard:")
if st.button(TRAIN_LABEL, key="explain.train", type="primary" if not paths else "secondary"):
    if cohort.labels is None:
        st.warning("This data has no outcome labels, so no model can be trained. Add labels on the Data page.")
        st.stop()
    jobs.submit_training("explain.train", cohort, cache.EXPLAIN_QUICK_MODELS, cache.EXPLAIN_QUICK_PRESET, 0)
info, trained = jobs.follow("explain.train", ("train",))
if trained is not None:
    st.session_state[state.COMPARE_SUMMARY] = trained
    paths.insert(0, str(trained.folder))
    notice.empty()
if info is not None and info.active:
    st.stop()
if not paths:
    st.stop()

c = st.columns([2, 2, 1])
path = c[0].selectbox("Run", paths, key="explain.run", help="Runs trained on the data loaded now, newest first")
run = cache.load_explain_run(path)
match = cache.run_match(path, cohort)
if match.sentence():
    if not match.usable:
        st.error(match.sentence() + " Load the data it was trained on, or pick another run.")
        st.stop()
    st.warning(match.sentence() + " The explanations below are of these data, scored by models trained "
               "on other data.")
names = tuple(c[1].multiselect("Models", list(run.models), default=list(run.models), key="explain.models",
                               format_func=lambda n: registry.get(n).label if n in registry.REGISTRY else n))
n = c[2].number_input("Test patients", 10, 500, 100, step=10, key="explain.n",
                      help="Patients used for the global importance (more = slower, steadier)")
hour = None
if run.online:
    hour = float(st.number_input("Hour of the stay", 1, int(run.builder.config.window_hours) - 1, 24,
                                 key="explain.hour",
                                 help="Online run: the global importance explains each test patient's risk at "
                                      "this hour (patients still in the stay then), from data up to it."))
if not names:
    st.warning("Choose at least one model.")
    st.stop()
# Explaining many patients is a job; its result is kept per request for this session.
request = (path, cohort.fingerprint(), names, int(n), hour)
done = st.session_state.setdefault(state.EXPLAIN_RESULTS, {})
if request not in done:
    if st.session_state.get(state.EXPLAIN_REQUEST) != request:
        st.session_state[state.EXPLAIN_REQUEST] = request
        jobs.submit("explain.global", "explain", cohort, {"run": path, "models": names, "n_patients": int(n),
                                                          "hour": hour},
                    f"Explain {len(names)} model(s) on {int(n)} test patients")
    info, out = jobs.follow("explain.global", ("explain",))
    if out is not None:
        done[request] = out
    else:
        if info is not None and info.state in ("failed", "cancelled") and st.button("Explain again",
                                                                                   key="explain.again"):
            st.session_state.pop(state.EXPLAIN_REQUEST, None)
            st.rerun()
        st.stop()
results = done[request]
if run.online:
    st.caption(f"Online run: each model's risk at hour {hour:g} of {len(results[0].patient_ids)} test patient(s) "
               "still in the stay then, explained from their data up to that hour.")

st.subheader("What each model relies on")
table = compare_importance(results)
st.plotly_chart(plots.importance_figure(table), width="stretch")
if len(results) > 1:
    st.plotly_chart(plots.agreement_figure(importance_agreement(table)), width="stretch")
with st.expander("How each model was explained"):
    st.dataframe([{"model": r.label or r.model_name, "explains": r.output, "method": r.method, "seconds": round(r.seconds, 2),
                   "additivity error": f"{r.additivity_error:.2g}"} for r in results], hide_index=True)
seq = [r for r in results if r.is_time_resolved]
for r in seq:
    st.plotly_chart(plots.time_importance_figure(r), width="stretch")

st.subheader("One patient")
ids = list(results[0].patient_ids)
pid = st.selectbox("Patient (test set)", ids, key="explain.patient")
at = None
if run.online:
    hours = cache.patient_risk(path, cohort, pid)["time_hours"].tolist()
    at = st.select_slider("Hour to explain", hours, value=hours[-1] if hour not in hours else hour,
                          key=f"explain.at.{pid}", help="The patient-hour whose risk is explained")
risk, local = cache.explain_patient(path, cohort, names, pid, at)
local_seq = [r for r in local if r.is_time_resolved]
if local_seq:
    pick = st.selectbox("Sequence model for the heatmap", [r.model_name for r in local_seq], key="explain.seq",
                        format_func=lambda n: next(r.label or n for r in local_seq if r.model_name == n))
    res = next(r for r in local_seq if r.model_name == pick)
    st.plotly_chart(plots.patient_attribution_figure(cohort.patient_events(pid), risk, res, pid),
                    width="stretch")
local_tab = [r for r in local if not r.is_time_resolved]
if local_tab:
    pick = st.selectbox("Classical model for the waterfall", [r.model_name for r in local_tab],
                        format_func=lambda n: next(r.label or n for r in local_tab if r.model_name == n),
                        key="explain.tab")
    st.plotly_chart(plots.waterfall_figure(next(r for r in local_tab if r.model_name == pick), pid),
                    width="stretch")
