"""Architecture rules that must never regress."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_core_never_imports_streamlit():
    """Import every core module in a fresh interpreter; streamlit must not be loaded."""
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "core").rglob("*.py") if p.name != "__main__.py")
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"a core module imports streamlit: {out.stdout} {out.stderr}"


def test_core_has_no_streamlit_in_source():
    offenders = [str(p) for p in (ROOT / "core").rglob("*.py") if "import streamlit" in p.read_text()]
    assert not offenders, f"core must not import streamlit: {offenders}"


def test_cache_decorators_only_in_app_cache_and_resources():
    """Data and run caches live in app/cache.py, process-wide singletons in app/resources.py; nowhere else."""
    allowed = {ROOT / "app" / "cache.py", ROOT / "app" / "resources.py"}
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "app").rglob("*.py")
                 if p not in allowed and ("st.cache_data" in p.read_text() or "st.cache_resource" in p.read_text())]
    assert not offenders, f"st.cache_* belongs in app/cache.py or app/resources.py only: {offenders}"
    assert "st.cache_data" not in (ROOT / "app" / "resources.py").read_text(), \
        "app/resources.py holds st.cache_resource singletons only; st.cache_data wrappers go in app/cache.py"
