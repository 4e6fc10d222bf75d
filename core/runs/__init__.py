"""Runs on disk: saving, verifying, listing and loading (:mod:`store`), the checked reading of a run's files
(:mod:`runfiles`), scoring new patients (:mod:`predict`), the report (:mod:`report`), exports
(:mod:`export`) and the reuse of identical results (:mod:`reuse`).
"""
