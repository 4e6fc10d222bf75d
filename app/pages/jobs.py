"""Jobs: this session's running and finished jobs (cancel from here), and where new jobs run."""
import pandas as pd
import streamlit as st

from app import jobs
from app.components import show_error
from core.engine import RAY_ADDRESS_ENV, BackendConfig
from core.exceptions import CoreError

st.title("Jobs")
st.markdown("Training, the time-order analysis, the gate models and explanations of many patients run as **jobs** "
            "in worker processes of the server: they keep running when you open another page or reload, and wait "
            "in a queue when every core is busy. This page lists the jobs of this browser session.")


@st.fragment(run_every=2.0)
def _table() -> None:
    listed = jobs.session_jobs()
    if not listed:
        st.info("No jobs in this session yet. Start one on the Compare, Time order, How RNNs work or Explain page.")
        return
    st.dataframe(pd.DataFrame([{"job": i.label, "state": i.state, "progress": i.fraction,
                                "seconds": round(i.seconds), "now": jobs.describe_state(i, markdown=False)} for i in listed]),
                 hide_index=True, width="stretch",
                 column_config={"progress": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0),
                                "job": st.column_config.TextColumn(), "now": st.column_config.TextColumn()})
    for i in [i for i in listed if i.active]:
        if st.button(f"Cancel: {i.label}", key=f"jobs.page.cancel.{i.id}"):
            jobs.cancel(i.id)
            st.rerun(scope="fragment")


_table()

st.subheader("Where new jobs run")
current = jobs.get_backend()
with st.form("jobs.backend_form"):
    name = st.radio("Backend", ["local", "ray"], index=["local", "ray"].index(current.name), horizontal=True,
                    key="jobs.backend", format_func={"local": "This server (one fit after another)",
                                                     "ray": "Ray (independent fits side by side)"}.get)
    address = st.text_input("Ray cluster address (optional)", value=current.address or "", key="jobs.address",
                            help=f"Empty: a private Ray instance on this server (or ${RAY_ADDRESS_ENV} when the "
                                 "server sets it). Example: ray://head-node:10001")
    if st.form_submit_button("Use for new jobs"):
        try:
            jobs.set_backend(BackendConfig(name=name, address=address.strip() or None))
            st.success("New jobs of this session will use: " + jobs.get_backend().describe())
        except (CoreError, ValueError) as err:
            show_error(err)
st.caption("Current setting: " + jobs.get_backend().describe() + ". The same seeds give the same numbers on both.")
