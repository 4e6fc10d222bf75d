"""Start the app with its security headers: ``streamlit run serve.py`` (see app/security.py).

``streamlit run streamlit_app.py`` also works (the same app without the extra response headers).
"""
import streamlit as st
from starlette.middleware import Middleware

from app.security import SecurityHeaders

app = st.App("streamlit_app.py", middleware=[Middleware(SecurityHeaders)])
