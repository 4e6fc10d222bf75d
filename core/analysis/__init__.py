"""Analyses of a fitted run: explanations (SHAP), the time-order measurement, the gate models of the
recurrent networks and the what-if.

Modules: :mod:`explain`, :mod:`timeorder`, :mod:`gates`, :mod:`whatif`.
"""
