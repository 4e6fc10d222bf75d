"""``streamlit run tests/app/_download_serve.py``: _download_app.py behind the middleware of serve.py."""
import streamlit as st

from app.security import MIDDLEWARE

app = st.App("_download_app.py", middleware=MIDDLEWARE)
