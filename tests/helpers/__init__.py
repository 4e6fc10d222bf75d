"""What the test modules share (no test module imports another): cohorts and their files (``cohorts``),
ingestion input builders (``data_files``), saved runs and tamper tools (``runs``), the planted-signal cohort of
the explanation tests (``explain``), page-test helpers (``pages``), the browser scripts' server tools
(``browser``) and paths (``paths``)."""
