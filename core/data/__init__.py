"""Data: reading files (CSV, Parquet, zips, DuckDB for large ones), validation and plausibility, duplicate
stays, the cohort object, the statistics of the Cohort page and the generated demo cohort.

Modules: :mod:`readers`, :mod:`duck`, :mod:`ingest` (``validate_data``), :mod:`validation` (the report),
:mod:`plausibility`, :mod:`duplicates`, :mod:`cohort`, :mod:`explore`, :mod:`demo`.
"""
