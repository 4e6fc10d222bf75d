"""Streamlit UI. Everything that imports streamlit lives here; pages call core through app.cache."""
