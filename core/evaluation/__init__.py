"""Evaluation: point metrics, bootstrap and cluster-bootstrap intervals, DeLong tests, online alarm metrics
(:mod:`metrics`) and decision curves (:mod:`decision`).
"""
