"""Predict: score new patients with a saved run; each patient's risk, flagged above the run's thresholds,
the risk trajectory of one patient, and a spreadsheet-safe CSV (the same rows as ``python -m core predict``)."""
from functools import partial

import streamlit as st

from app import context, jobs, state, workspace
from app.components import gui_text, load_with_status, mapping_editor, plain, render_report
from app.external_view import draw_external
from app.security import download_button
from app.state import DataSource, get_source
from core import plots
from core.exceptions import CoreError
from core.runs.export import safe_csv
from core.models import registry
from core.runs.predict import check_missing_importance, data_config_for, map_to_run, run_variables
from core.service import PredictRequest

# No E2E_CLICKS: on a fresh server no run exists yet when the browser check reaches this page (the trainings it
# starts elsewhere are still queued), so a declared button would be missing; the page then shows its guidance.
DEMO, UPLOAD, CURRENT = "The demo patients (bundled)", "Upload new patients", "The data loaded on the Data page"


def _held_result(path: str):
    """The last scoring of run ``path`` in this session, else the newest one this server keeps for the user
    (after a reload): ``(PredictRequest, data digests, PredictionResult)`` or ``None``."""
    held = st.session_state.get(state.PREDICT_RESULT)
    if held is not None and held[0] is not None and held[0].run == path:
        return held
    request, result = jobs.latest_result("predict", lambda r: r.run == path)
    return None if request is None else (request, (), result)


st.title("Predict")
st.caption("Score patients a run has never seen: no labels needed (a label column in the file is never read). "
           "Each model flags a patient when its risk reaches the threshold saved with the run, chosen on the "
           "run's validation patients.")
runs = workspace.list_user_runs()
for r in runs:
    r["label"] = f"{r['name']} ({len(r['models'])} models{'' if r.get('saved') else ', not saved'})"
if not runs:
    st.info("No run to score with yet. Train models on **Compare models** (tick **Save run** to keep it), then "
            "come back here.")
    st.page_link("app/pages/compare.py", label="Open Compare models", icon=":material/leaderboard:")
    st.stop()
current = context.current_run()
paths = [r["path"] for r in runs]
path = st.selectbox("Run", paths, key="predict.run", index=paths.index(current["path"]) if current and current[
    "path"] in paths else 0, format_func=lambda p: next(r["label"] for r in runs if r["path"] == p),
    help="The current run first; any of your runs can score new patients")   # options are plain text
try:
    run = workspace.load_run(path)
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
    if not up and _held_result(path) is not None:
        source = None                   # nothing new uploaded: the last scoring of this run is shown below
    elif not up:
        st.info("Upload the events of the patients to score: one table (long or wide: patient id, time, and the "
                "run's variables), a zip, or the per-patient PhysioNet files. They are checked exactly as on the "
                "Data page; columns are detected automatically. Or score the bundled demo patients.")
        st.button("Score the demo patients", key="predict.demo",
                  on_click=lambda: st.session_state.update({"predict.where": DEMO, state.PREDICT_DEMO_REQUESTED: True}))
        st.stop()
    else:
        source = DataSource("upload", tuple((f.name, f.getvalue()) for f in up), None, data_config_for(run.online))
elif where == CURRENT and get_source().kind == "upload":
    current = get_source()           # the Data page's mapping; its target and labels are dropped
    source = DataSource("upload", current.events, None, data_config_for(run.online, current.config))
else:
    source = DataSource("demo", (), None, data_config_for(run.online))
if source is not None:
    cohort, report = load_with_status(source)
    if cohort is None or report.errors or report.warnings:      # anything to act on: shown open, as on the Data page
        render_report(report)
        if cohort is None:
            st.stop()
    else:
        with st.expander(f"Validation report: {report.rows_used:,} of {report.rows_read:,} rows used", expanded=False):
            render_report(report)
    pairs = st.session_state.setdefault(state.PREDICT_MAPPING, {}).get(path, {})
    raw = cohort                       # scored as uploaded: the job matches the variables again, the same way
    try:
        cohort, mapping = map_to_run(run, raw, pairs)
        match = workspace.run_match(path, cohort)
    except CoreError as err:
        st.error(gui_text(err))
        st.session_state[state.PREDICT_MAPPING].pop(path, None)      # a pair that no longer fits these data
        st.stop()
    with st.expander(f"Variables: {len(mapping.renamed)} matched with the run's under another name"
                     + (f", {len(match.missing)} of the run's missing" if match.missing else ""),
                     expanded=bool(mapping.ambiguous or match.missing)):
        applied = mapping_editor("predict.mapping", mapping, [v for v in raw.series_variables + raw.static_variables
                                                             if v not in run_variables(run)], run_variables(run), pairs)
        if applied is not None:
            st.session_state[state.PREDICT_MAPPING][path] = applied
            st.rerun()
    if not match.usable:
        st.error(gui_text(match.sentence()))
        st.stop()
    if match.sentence():
        st.warning(gui_text(match.sentence()))
    allow = False
    try:
        check_missing_importance(run, match.missing)
    except CoreError as err:              # the run's important variables are missing: refused unless the user insists
        st.error(gui_text(err))
        allow = st.checkbox("Score anyway without them", key=f"predict.allow_missing.{run.name}",
                            help="The risks are then those of patients never measured for the missing variables; "
                                 "the warning stays with the results")
        if not allow:
            st.stop()
    what = "the demo patients" if source.kind == "demo" else ", ".join(n for n, _ in source.events)
    label = "Score the demo patients" if source.kind == "demo" else f"Score the {cohort.n_patients:,} patients"
    requested = st.session_state.pop(state.PREDICT_DEMO_REQUESTED, False) and source.kind == "demo"
    if st.button(label, type="primary", key="predict.go") or requested:
        jobs.submit("predict", PredictRequest(run=path, source=what, mapping=tuple(pairs.items()),
                                                    allow_missing=allow), raw,
                    f"Score {cohort.n_patients:,} patients with {len(run.models)} model(s) of {run.name}")
    origin = "demo" if source.kind == "demo" else "current" if where == CURRENT else "upload"
    draw_external(run, path, source, origin, get_source() if origin == "current" else None, pairs, what, allow)
info, done = jobs.follow("predict", ("predict",))
if done is not None:
    request = jobs.request_of(info.id)
    st.session_state[state.PREDICT_RESULT] = (request, source.digests if source is not None else (), done)
held = _held_result(path)
if held is None or (source is not None and held[1] != source.digests):
    st.stop()
request, _, result = held
st.info(f"Scored: {plain(request.source or 'uploaded patients')} with run {plain(run.name)}."
        + (f" {plain(result.mapping.sentence())}" if result.mapping.renamed else ""))
if source is None:
    cohort = None                      # the scored data are not loaded now: no per-patient trajectory below

flagged = result.flagged()
for line in result.warnings:
    st.warning(gui_text(line))
if result.seen_sentence():
    st.warning(result.seen_sentence())
for start in range(0, len(result.models), 4):          # at most four cards a row: number and name never cut
    c = st.columns(4)
    for i, name in enumerate(result.models[start:start + 4]):
        c[i].metric(f"Flagged by {result.labels[name]}", f"{flagged[name]:,} of {result.n_patients:,}",
                    help=f"risk >= {result.thresholds[name]:.3f}" + (" at any hour" if result.online else ""))
table = result.patients()
st.dataframe(table, hide_index=True, key="predict.table",
             column_config={c: st.column_config.NumberColumn(format="%.3f") for c in table.columns if "risk" in c})
st.plotly_chart(plots.risk_distribution_figure(result.scores, result.thresholds), width="stretch",
                key="predict.dist")
d = st.columns(2)
download_button("Risks per model (CSV, as the command line writes)", partial(safe_csv, result.scores),
                "predictions.csv", mime="text/csv", key="predict.download", where=d[0])
download_button("One row per patient (CSV)", partial(safe_csv, table), "patients.csv", mime="text/csv",
                key="predict.download_patients", where=d[1])

st.subheader("One patient's risk over time")
if cohort is None:
    st.caption("Upload the scored patients again (or pick their source above) to see one patient's risk over time.")
    st.stop()
ids = table["patient_id"].astype(str).tolist()
# the browser gets at most 1,000 ids (the highest risks: the patients a person looks at first)
pid = st.selectbox("Patient (highest risk first" + (f"; the top 1,000 of {len(ids):,}" if len(ids) > 1000 else "") + ")",
                   ids[:1000], key="predict.patient")
try:
    risk = workspace.patient_risk(path, cohort, pid)
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
