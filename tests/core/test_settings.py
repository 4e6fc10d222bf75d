"""core.settings: every CHRONOSCOPE_* variable in one place, read fresh, checked with a message that names it."""
import re
from pathlib import Path

import pytest

from core.settings import PREFIX, SettingError, Settings, read_settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_variable_the_code_names_is_declared_once():
    declared = [v.env for v in Settings.variables()]
    assert len(declared) == len(set(declared)) and all(e.startswith(PREFIX) for e in declared)
    sources = [*ROOT.joinpath("core").rglob("*.py"), *ROOT.joinpath("app").rglob("*.py"),
               ROOT / "serve.py", ROOT / "streamlit_app.py"]
    named = {m for p in sources if p.is_file() for m in re.findall(r"CHRONOSCOPE_[A-Z_]+[A-Z]", p.read_text())}
    # CHRONOSCOPE_USERS_FILE is also named by core.users (the users file's own module, a constant of its name)
    assert named - set(declared) == set(), "read somewhere but not declared in core.settings.Settings"


def test_the_modules_names_of_the_variables_are_the_settings():
    from core.data import duck
    from core.service import jobs
    from core.training import engine, protocol, threads
    from core.users import USERS_FILE_ENV
    assert threads.THREADS_ENV == Settings.threads.env and jobs.SLOTS_ENV == Settings.job_slots.env
    assert (engine.BACKEND_ENV, engine.RAY_ADDRESS_ENV, engine.RAY_CPUS_ENV) == (
        Settings.backend.env, Settings.ray_address.env, Settings.ray_cpus.env)
    assert protocol.FEATURES_IN_MEMORY_ENV == Settings.features_in_memory_mb.env
    assert (duck.ENGINE_ENV, duck.MEMORY_ENV, duck.TMP_ENV, duck.MIN_MB_ENV) == (
        Settings.engine.env, Settings.memory_limit_mb.env, Settings.tmp_dir.env, Settings.duckdb_min_mb.env)
    assert USERS_FILE_ENV == Settings.users_file.env


def test_every_variable_has_a_unit_a_line_of_doc_and_its_default_when_unset():
    empty = Settings({})
    for var in Settings.variables():
        assert var.unit and var.doc and var.env in var.__doc__
        name = next(k for k, v in vars(Settings).items() if v is var)
        assert getattr(empty, name) == var.default, name
    assert (empty.backend, empty.engine, empty.runs_dir, empty.features_in_memory_mb) == ("local", "auto", "runs", 1024)


def test_read_fresh_at_every_call(monkeypatch):
    monkeypatch.delenv("CHRONOSCOPE_JOB_SLOTS", raising=False)
    assert read_settings().job_slots is None
    monkeypatch.setenv("CHRONOSCOPE_JOB_SLOTS", " 3 ")
    assert read_settings().job_slots == 3
    monkeypatch.setenv("CHRONOSCOPE_BACKEND", " Ray ")
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", "/tmp/with space ")          # a path is taken as it is
    settings = read_settings()
    assert settings.backend == "ray" and settings.tmp_dir == "/tmp/with space "
    monkeypatch.setenv("CHRONOSCOPE_JOB_SLOTS", "4")
    assert settings.job_slots == 3 and read_settings().job_slots == 4       # a Settings is a snapshot


def test_values_are_parsed_to_their_types():
    s = Settings({"CHRONOSCOPE_THREADS": "2", "CHRONOSCOPE_RAY_CPUS": "8", "CHRONOSCOPE_MEMORY_LIMIT_MB": "512",
                  "CHRONOSCOPE_FEATURES_IN_MEMORY_MB": "0", "CHRONOSCOPE_MAX_COLUMNS": "200", "CHRONOSCOPE_ENGINE": "DuckDB",
                  "CHRONOSCOPE_RAY_ADDRESS": " head:6379 ", "CHRONOSCOPE_RUNS_DIR": "", "CHRONOSCOPE_USERS_FILE": ""})
    assert (s.threads, s.ray_cpus, s.memory_limit_mb, s.features_in_memory_mb) == (2, 8, 512.0, 0.0)
    assert (s.max_columns, s.engine, s.ray_address) == (200.0, "duckdb", "head:6379")
    assert s.runs_dir == "" and s.users_file is None        # as before: a set runs folder is taken as it is


@pytest.mark.parametrize(("name", "value", "match"), [
    ("threads", "two", r"CHRONOSCOPE_THREADS='two' is not a number of threads.*CHRONOSCOPE_THREADS=2"),
    ("threads", "0", r"CHRONOSCOPE_THREADS='0' is not a number of threads"),
    ("job_slots", "-1", r"CHRONOSCOPE_JOB_SLOTS='-1' is not a number of jobs.*CHRONOSCOPE_JOB_SLOTS=2"),
    ("backend", "spark", r"CHRONOSCOPE_BACKEND='spark' is not a backend: use 'local' or 'ray'"),
    ("ray_cpus", "many", r"CHRONOSCOPE_RAY_CPUS='many' is not a number of CPUs.*CHRONOSCOPE_RAY_CPUS=4"),
    ("features_in_memory_mb", "lots", r"CHRONOSCOPE_FEATURES_IN_MEMORY_MB='lots' is not a number.*=1024"),
    ("features_in_memory_mb", "-1", r"CHRONOSCOPE_FEATURES_IN_MEMORY_MB='-1' must be 0 or more megabytes"),
    ("memory_limit_mb", "lots", r"CHRONOSCOPE_MEMORY_LIMIT_MB='lots' is not a number.*=2048"),
    ("duckdb_min_mb", "nan", r"CHRONOSCOPE_DUCKDB_MIN_MB='nan' must be 0 or more megabytes"),
    ("engine", "spark", r"CHRONOSCOPE_ENGINE='spark' is not an engine.*CHRONOSCOPE_ENGINE=duckdb"),
    ("max_columns", "0", r"CHRONOSCOPE_MAX_COLUMNS must be a positive number; got '0'.*MAX_COLUMNS=5000"),
    ("max_inflated_mb", "x" * 100, r"MAX_INFLATED_MB must be a positive number; got 'x{40}… \(100 characters\)'"),
])
def test_a_bad_value_names_the_variable_and_an_example(name, value, match):
    var = getattr(Settings, name)
    settings = Settings({var.env: value})
    with pytest.raises(SettingError, match=match):
        getattr(settings, name)
    assert Settings({var.env: value, "CHRONOSCOPE_RUNS_DIR": "elsewhere"}).runs_dir == "elsewhere"  # only it fails


def test_a_bad_value_reaches_the_code_that_reads_it(monkeypatch):
    from core.service.jobs import default_slots
    from core.training.engine import BackendError, configured_backend
    from core.training.threads import thread_count
    monkeypatch.setenv("CHRONOSCOPE_THREADS", "two")
    with pytest.raises(SettingError, match="CHRONOSCOPE_THREADS"):
        thread_count()
    with pytest.raises(SettingError, match="CHRONOSCOPE_THREADS"):
        default_slots()
    monkeypatch.setenv("CHRONOSCOPE_THREADS", "2")
    monkeypatch.setenv("CHRONOSCOPE_JOB_SLOTS", "")
    assert thread_count() == 2 and default_slots() >= 1
    monkeypatch.setenv("CHRONOSCOPE_BACKEND", "spark")
    with pytest.raises(BackendError, match="CHRONOSCOPE_BACKEND='spark'"):
        configured_backend()
