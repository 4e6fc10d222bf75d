"""Chronoscope core library: ingestion, validation, features, models, evaluation, explanations.

Pure Python (numpy, pandas, scikit-learn, torch, shap, plotly). Never imports streamlit.
"""
__all__ = ["cohort", "validation", "exceptions"]
