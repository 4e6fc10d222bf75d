"""Entry point and router only. Run: streamlit run streamlit_app.py"""
import streamlit as st

from app import auth, context

if __name__ == "__main__":
    st.set_page_config(page_title="Chronoscope: clinical time series", page_icon="🫀", layout="wide")

PAGES = {
    "Data": [
        st.Page("app/pages/data.py", title="Data", icon=":material/upload_file:", default=True),
        st.Page("app/pages/cohort.py", title="Cohort", icon=":material/groups:"),
        st.Page("app/pages/timeline.py", title="Patient timeline", icon=":material/timeline:"),
    ],
    "Models": [st.Page("app/pages/compare.py", title="Compare models", icon=":material/leaderboard:"),
               st.Page("app/pages/timeorder.py", title="Time order", icon=":material/swap_horiz:"),
               st.Page("app/pages/models.py", title="How RNNs work", icon=":material/school:"),
               st.Page("app/pages/explain.py", title="Explain", icon=":material/psychology:"),
               st.Page("app/pages/predict.py", title="Predict", icon=":material/online_prediction:"),
               st.Page("app/pages/jobs.py", title="Jobs", icon=":material/pending_actions:")],
}

# Streamlit runs this file as __main__. A job's worker process (core/service/jobs.py, forkserver) imports it again as
# __mp_main__, with nobody logged in and no session: it must not draw or load anything there.
if __name__ == "__main__":
    auth.require_login()            # login form until someone is logged in (login is off for the local demo)
    auth.sidebar()                  # who is logged in, "Log out", the research-only note
    page = st.navigation(PAGES)     # the navigation first: it is drawn before the data are loaded
    context.sidebar()               # the current data and the current run
    page.run()
