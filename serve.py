"""Start the app as a server for a team: ``streamlit run serve.py`` (see app/security.py and docs/deployment.md).

The app of ``streamlit_app.py`` with security headers on every response, and downloads served only to
the browser that clicked them, for a few minutes. ``streamlit run streamlit_app.py`` also works (the
same app without these two protections: for one user on their own machine).
"""
import streamlit as st

from app.security import MIDDLEWARE

app = st.App("streamlit_app.py", middleware=MIDDLEWARE)
