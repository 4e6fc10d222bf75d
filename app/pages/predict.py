"""Predict: score new patients with a saved run; each patient's risk, flagged above the run's thresholds,
the risk trajectory of one patient, and a spreadsheet-safe CSV (the same rows as ``python -m core predict``)."""
import streamlit as st

from app import cache, jobs, state
from app.components import gui_text, load_with_status, render_report
from app.state import DataSource, get_source
from core import plots
from core.exceptions import CoreError
from core.export import safe_csv
from core.models import registry
from core.predict import data_config_for

# No E2E_CLICKS: on a fresh server no run exists yet when the browser check reaches this page (the trainings it
# starts elsewhere are still queued), so a declared button would be missing; the page then shows its guidance.
DEMO, UPLOAD, CURRENT = "The demo patients (bundled)", "Upload new patients", "The data loaded on the Data page"

st.title("Predict")
st.caption("Score patients a run has never seen: no labels needed (a label column in the file is never read). "
           "Each model flags a patient when its risk reaches the threshold saved with the run, chosen on the "
           "run's validation patients.")
runs = cache.prediction_runs()
if not runs:
    st.info("No run to score with yet. Train models on **Compare models** (tick **Save run** to keep it), then "
            "come back here.")
    st.page_link("app/pages/compare.py", label="Open Compare models", icon=":material/leaderboard:")
    st.stop()
path = st.selectbox("Run", [r["path"] for r in runs], key="predict.run",
                    format_func=lambda p: next(r["label"] for r in runs if r["path"] == p))   # options are plain text
try:
    run = cache.load_explain_run(path)
except CoreError as err:
    st.error(gui_text(err))
    st.stop()
st.caption(f"{'Online run: every hour with a row is scored, from the data up to it' if run.online else 'Stay run: one risk per stay'}"
           f"; models: {', '.join(registry.get(n).label for n in run.models)}"
           + ("; refitted on training + validation patients" if run.refitted else ""))

where = st.radio("Patients to score", [UPLOAD, DEMO, CURRENT], horizontal=True, key="predict.where")
if where == UPLOAD:
    up = st.file_uploader("Events of the new patients (same layouts as the Data page; labels not needed)",
                          type=["csv", "gz", "parquet", "zip", "txt", "tsv", "psv"], accept_multiple_files=True,
                          key="predict.events")
    if not up:
        st.info("Upload the events of the patients to score: one table (long or wide: patient id, time, and the "
                "run's variables), a zip, or the per-patient PhysioNet files. They are checked exactly as on the "
                "Data page; columns are detected automatically. Or score the bundled demo patients.")
        st.button("Score the demo patients", key="predict.demo",
                  on_click=lambda: st.session_state.update({"predict.where": DEMO, state.PREDICT_DEMO_REQUESTED: True}))
        st.stop()
    source = DataSource("upload", tuple((f.name, f.getvalue()) for f in up), None, data_config_for(run.online))
elif where == CURRENT and get_source().kind == "upload":
    current = get_source()           # the Data page's mapping; its target and labels are dropped
    source = DataSource("upload", current.events, None, data_config_for(run.online, current.config))
else:
    source = DataSource("demo", (), None, data_config_for(run.online))
cohort, report = load_with_status(source)
if cohort is None or report.errors or report.warnings:      # anything to act on: shown open, as on the Data page
    render_report(report)
    if cohort is None:
        st.stop()
else:
    with st.expander(f"Validation report: {report.rows_used:,} of {report.rows_read:,} rows used", expanded=False):
        render_report(report)
try:
    match = cache.run_match(path, cohort)
except CoreError as err:
    st.error(gui_text(err))
    st.stop()
if not match.usable:
    st.error(gui_text(match.sentence()))
    st.stop()
if match.sentence():
    st.warning(gui_text(match.sentence()))

key = (path, source.digests, repr(source.config), source.kind)
label = "Score the demo patients" if source.kind == "demo" else f"Score the {cohort.n_patients:,} patients"
requested = st.session_state.pop(state.PREDICT_DEMO_REQUESTED, False) and source.kind == "demo"
if st.button(label, type="primary", key="predict.go") or requested:
    jobs.submit("predict", "predict", cohort, {"run": path},
                f"Score {cohort.n_patients:,} patients with {len(run.models)} model(s) of {run.name}")
info, done = jobs.follow("predict", ("predict",))
if done is not None:
    st.session_state[state.PREDICT_RESULT] = (key, done)
held = st.session_state.get(state.PREDICT_RESULT)
if held is None or held[0] != key:
    st.stop()
result = held[1]

flagged = result.flagged()
if result.seen_sentence():
    st.warning(result.seen_sentence())
c = st.columns(max(len(result.models), 1))
for i, name in enumerate(result.models):
    c[i].metric(f"Flagged by {result.labels[name]}", f"{flagged[name]:,} of {result.n_patients:,}",
                help=f"risk >= {result.thresholds[name]:.3f}" + (" at any hour" if result.online else ""))
table = result.patients()
st.dataframe(table, hide_index=True, key="predict.table",
             column_config={c: st.column_config.NumberColumn(format="%.3f") for c in table.columns if "risk" in c})
st.plotly_chart(plots.risk_distribution_figure(result.scores, result.thresholds), width="stretch",
                key="predict.dist")
d = st.columns(2)
d[0].download_button("Risks per model (CSV, as the command line writes)", safe_csv(result.scores), "predictions.csv",
                     mime="text/csv", key="predict.download")
d[1].download_button("One row per patient (CSV)", safe_csv(table), "patients.csv", mime="text/csv",
                     key="predict.download_patients")

st.subheader("One patient's risk over time")
ids = table["patient_id"].astype(str).tolist()
# the browser gets at most 1,000 ids (the highest risks: the patients a person looks at first)
pid = st.selectbox("Patient (highest risk first" + (f"; the top 1,000 of {len(ids):,}" if len(ids) > 1000 else "") + ")",
                   ids[:1000], key="predict.patient")
try:
    risk = cache.patient_risk(path, cohort, pid)
except CoreError as err:
    st.warning(f"This run cannot score this patient hour by hour: {gui_text(err)}")
else:
    events = cohort.patient_events(pid)
    shown = events["variable"].astype(str).value_counts().index[:3].tolist()
    st.plotly_chart(plots.timeline_figure(events, shown, title=f"Patient {pid}", risk=risk,
                                          thresholds={n: t for n, t in result.thresholds.items() if n in risk.columns}),
                    width="stretch", key="predict.trajectory")
    st.caption("Top panel: each model's risk " + ("at every hour, from the data up to it." if result.online else
               "from the data up to each hour; the last point is the stay's risk.") + " Dotted: thresholds.")
