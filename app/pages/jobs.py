"""Jobs: this session's running and finished jobs (cancel from here), and where jobs run (the server's setting)."""
import pandas as pd
import streamlit as st

from app import auth, jobs
from app.components import plain, show_error
from core.training.engine import BACKEND_ENV, RAY_ADDRESS_ENV, configured_backend
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

st.subheader("Where jobs run")
operator = auth.mode() == "off"                  # login off: the one local user is the server's operator
try:
    where = configured_backend().describe(show_address=operator)
    st.markdown(f"**{plain(where)}**. The same seeds give the same numbers on every backend.")
except CoreError as err:
    show_error(err)
if operator:
    st.caption(f"Set by the server's environment, not on this page: start it with `{BACKEND_ENV}=ray` for Ray (a "
               f"private instance on 127.0.0.1), plus `{RAY_ADDRESS_ENV}=HOST:6379` to join a cluster; "
               f"`{BACKEND_ENV}=local` (the default) runs the fits in the job's own process.")
else:
    st.caption("Chosen by the server's operator for every user.")
