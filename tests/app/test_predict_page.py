"""Predict page: guidance without a run; an upload scored with a saved run gives the CLI's risks, flags
match the saved thresholds, a bad row gets the Data page's report, the CSV is spreadsheet-safe; an
online run scores every hour; the current run is the default and its last scoring stays across pages."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app.state import CURRENT_RUN, DATA_SOURCE, PREDICT_RESULT, DataSource
from core.cli import main
from core.config import DataConfig
from core.runs.export import safe_csv
from tests.helpers.pages import finish_jobs, session_job_states, unescape
from tests.helpers.cohorts import make_tiny_cohort, write_long
from tests.helpers.runs import online_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(trained_run, tmp_path_factory):
    """The session's run (CLI; tests/conftest.py), alone in ``runs`` as ``tiny``, and the events of *other* patients
    to score (ids 'q...') in a folder of this module's own."""
    folder = tmp_path_factory.mktemp("predict")
    new, _ = write_long(make_tiny_cohort(n_patients=25, seed=11), folder, prefix="q", labels=False)
    return trained_run.run_dir.parent, new, folder


def _page(monkeypatch, tmp_path, runs: Path) -> AppTest:
    """A new session on the Predict page with its own copy of the runs in ``runs`` (``tmp_path / "runs"``): the
    server keeps a run's last scoring for the user (``jobs.latest_result``), so each test scores its own folders."""
    from core.runs.store import copy_run
    for run in runs.iterdir() if runs.is_dir() else ():
        copy_run(run, tmp_path / "runs" / run.name)
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path / "srv"))   # a fresh server folder: no unsaved runs
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("app/pages/predict.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _upload_as_current(at: AppTest, path: Path) -> AppTest:
    """The Data page's upload of ``path`` (no labels), then 'The data loaded on the Data page'."""
    at.session_state[DATA_SOURCE] = DataSource("upload", ((path.name, path.read_bytes()),), None,
                                               DataConfig(target=None))
    at.radio(key="predict.where").set_value("The data loaded on the Data page").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _score(at: AppTest) -> AppTest:
    next(b for b in at.button if b.label.startswith("Score the") and b.key == "predict.go").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_without_a_run_the_page_says_how_to_make_one(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path, tmp_path / "no-runs")
    text = " ".join(unescape(i.value) for i in at.info)
    assert "No run to score with yet" in text and "Save run" in text
    assert not at.dataframe


def test_scored_risks_equal_the_cli_and_flags_follow_the_thresholds(trained, monkeypatch, tmp_path):
    runs, new, folder = trained
    at = _page(monkeypatch, tmp_path, runs)
    at = _score(_upload_as_current(at, new))
    request, _, result = at.session_state[PREDICT_RESULT]
    assert request.run == str(tmp_path / "runs" / "tiny")
    out = folder / "cli.csv"
    assert main(["predict", str(runs / "tiny"), str(new), "--out", str(out)]) == 0
    cli = pd.read_csv(out, dtype={"patient_id": str})
    page = result.scores.sort_values(["model", "patient_id"]).reset_index(drop=True)
    cli = cli.sort_values(["model", "patient_id"]).reset_index(drop=True)
    assert list(page["patient_id"]) == list(cli["patient_id"]) and set(page["patient_id"].str[0]) == {"q"}
    np.testing.assert_allclose(page["risk"].to_numpy(), cli["risk"].to_numpy(), rtol=0, atol=1e-12)
    for name, t in result.thresholds.items():
        d = page[page["model"] == name]
        assert (d["predicted"].to_numpy() == (d["risk"].to_numpy() >= t)).all()
    # the page's table: one row per patient, highest first risk first, flags as the thresholds say
    table = next(d.value for d in at.dataframe if "logistic regression risk" in d.value.columns)
    assert len(table) == 25 and table["logistic regression risk"].is_monotonic_decreasing
    lr = page[page["model"] == "lr"].set_index("patient_id")
    flags = table.set_index("patient_id")["logistic regression flagged"]
    assert (flags.to_numpy() == (lr["risk"].reindex(flags.index) >= result.thresholds["lr"]).to_numpy()).all()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Flagged by GRU"] == f"{int(page.loc[page['model'] == 'gru', 'predicted'].sum())} of 25"
    assert at.get("plotly_chart"), "distribution and trajectory charts"


def test_a_bad_row_gets_the_data_page_report(trained, monkeypatch, tmp_path):
    runs, new, folder = trained
    bad = folder / "bad.csv"
    # one bad value, and a patient whose id is a spreadsheet formula
    bad.write_text(new.read_text().replace("q002,", "=cmd,") + "q001,01:00,HR,oops\n")
    at = _score(_upload_as_current(_page(monkeypatch, tmp_path, runs), bad))
    text = " ".join(unescape(w.value) for w in at.warning)
    assert "oops" in text and "HR" in text                      # the finding with its example, as on the Data page
    _, _, result = at.session_state[PREDICT_RESULT]
    assert result.n_patients == 25                               # the bad row excluded, not the patient
    assert "=cmd" in set(result.scores["patient_id"])
    # what the two download buttons send: the id escaped (one row per model; one per patient)
    for frame in (result.scores, result.patients()):
        rows = [ln for ln in safe_csv(frame).splitlines() if "cmd" in ln]
        assert len(rows) == (3 if frame is result.scores else 1) and all(r.startswith("'=cmd,") for r in rows)


def test_the_csv_escapes_text_cells():
    from core.runs.predict import PredictionResult
    scores = pd.DataFrame({"patient_id": ["=cmd|' /C calc'!A0", "p2"], "model": "lr", "risk": [0.7, -0.1 + 0.2],
                           "predicted": [1, 0]})
    result = PredictionResult("r", False, ["lr"], {"lr": "logistic regression"}, {"lr": 0.5}, scores)
    text = safe_csv(result.scores)
    assert "'=cmd" in text and ",0.7," in text
    assert "'=cmd" in safe_csv(result.patients())


def test_an_online_run_scores_every_hour(monkeypatch, tmp_path):
    (tmp_path / "cli").mkdir()
    run_dir, events = online_run(tmp_path / "cli")
    at = _score(_upload_as_current(_page(monkeypatch, tmp_path, run_dir.parent), events))
    _, _, result = at.session_state[PREDICT_RESULT]
    assert result.online and "time" in result.scores.columns
    out = tmp_path / "cli.csv"                                  # every hour with a row, as the CLI scores it
    assert main(["predict", str(run_dir), str(events), "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(result.scores.reset_index(drop=True), pd.read_csv(out, dtype={"patient_id": str}),
                                  check_dtype=False, rtol=0, atol=1e-12)
    table = next(d.value for d in at.dataframe if "GRU first flagged hour" in d.value.columns)
    assert len(table) == 40
    assert "SepsisLabel" in " ".join(unescape(w.value) for w in at.warning)   # the label column: ignored, said so


def test_without_an_upload_it_says_what_to_upload_and_scores_the_demo(trained, monkeypatch, tmp_path):
    runs, _, _ = trained
    at = _page(monkeypatch, tmp_path, runs)
    assert "Upload the events of the patients to score" in " ".join(unescape(i.value) for i in at.info)
    assert not at.dataframe
    at.button(key="predict.demo").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    request, _, result = at.session_state[PREDICT_RESULT]
    assert request.source == "the demo patients" and result.n_patients == 2000 and set(result.models) == {"lr", "gbm", "gru"}
    assert at.button(key="predict.go").label == "Score the demo patients"
    assert len(at.get("plotly_chart")) == 2                    # the distribution and one patient's trajectory


def test_the_current_run_is_the_default_and_its_last_scoring_stays_across_pages(trained, monkeypatch, tmp_path):
    from core.training.experiment import run_experiment
    from core.runs.store import copy_run, save_run
    runs, new, _ = trained
    tiny = copy_run(runs / "tiny", tmp_path / "runs" / "tiny")
    save_run(run_experiment(make_tiny_cohort(n_patients=50, seed=9), ["lr"], preset="test"),
             tmp_path / "runs" / "newer")                                 # the newest run: listed first
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path / "srv"))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.session_state[CURRENT_RUN] = str(tiny)                             # as "Open this run" on Compare
    at.run()
    at.switch_page("app/pages/predict.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="predict.run").value == str(tiny)
    _score(_upload_as_current(at, new))
    request, _, result = at.session_state[PREDICT_RESULT]
    assert request.run == str(tiny) and set(result.models) == {"lr", "gbm", "gru"}
    at.switch_page("app/pages/cohort.py").run()
    at.switch_page("app/pages/predict.py").run()                          # back: the last scoring, not scored again
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="predict.run").value == str(tiny)
    assert any("Scored:" in i.value for i in at.info), [i.value for i in at.info]
    table = next(d.value for d in at.dataframe if "GRU risk" in d.value.columns)
    assert len(table) == 25 and len(session_job_states(at)) == 1


def test_renamed_variables_are_matched_and_the_users_pair_applies(trained, monkeypatch, tmp_path):
    """Another source's names: synonyms matched and listed; the user's own pair (session state, as the form's
    'Apply these pairs' stores it) reaches the job; the risks equal those of the original names."""
    from app.state import PREDICT_MAPPING
    runs, new, folder = trained
    rows = pd.read_csv(new, dtype={"patient_id": str})
    rows["variable"] = rows["variable"].replace({"HR": "Heart Rate", "Lactate": "Lac"})
    renamed = folder / "renamed.csv"
    rows.to_csv(renamed, index=False)
    at = _upload_as_current(_page(monkeypatch, tmp_path, runs), renamed)
    expander = next(e for e in at.expander if e.label.startswith("Variables: 1 matched"))
    assert "1 of the run's missing" in expander.label                          # Lactate: no synonym is 'Lac'
    pairs = next(d.value for d in at.dataframe if "Matched by" in d.value.columns)
    assert pairs.values.tolist() == [["Heart Rate", "HR", "synonym"]]
    at.session_state[PREDICT_MAPPING] = {str(tmp_path / "runs" / "tiny"): {"Lac": "Lactate"}}
    at.run()
    assert next(e for e in at.expander if e.label.startswith("Variables:")).label == \
        "Variables: 2 matched with the run's under another name"
    at = _score(at)
    request, _, result = at.session_state[PREDICT_RESULT]
    assert request.mapping == (("Lac", "Lactate"),)
    assert result.mapping.as_dict() == {"Lac": "Lactate", "Heart Rate": "HR"}
    assert "2 variable(s) of these data were matched" in " ".join(unescape(i.value) for i in at.info)
    out = folder / "original.csv"
    assert main(["predict", str(runs / "tiny"), str(new), "--out", str(out)]) == 0
    original = pd.read_csv(out, dtype={"patient_id": str}).sort_values(["model", "patient_id"]).reset_index(drop=True)
    page = result.scores.sort_values(["model", "patient_id"]).reset_index(drop=True)
    np.testing.assert_allclose(page["risk"].to_numpy(), original["risk"].to_numpy(), rtol=0, atol=1e-12)


def test_labelled_patients_measure_the_run_as_the_cli_does(trained, monkeypatch, tmp_path):
    """External validation on the page: nothing until the click; then the CLI's numbers (metrics.json)."""
    import json
    runs, _, folder = trained
    events, labels = write_long(make_tiny_cohort(n_patients=80, seed=12), folder, prefix="e")
    at = _page(monkeypatch, tmp_path, runs)
    at.session_state[DATA_SOURCE] = DataSource("upload", ((events.name, events.read_bytes()),),
                                               (labels.name, labels.read_bytes()), DataConfig(target="died"))
    at.radio(key="predict.where").set_value("The data loaded on the Data page").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any("internal auroc" in d.value.columns for d in at.dataframe)          # nothing unasked
    at.button(key="predict.evaluate").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    shown = next(d.value for d in at.dataframe if "internal auroc" in d.value.columns).set_index("model")
    out = tmp_path / "cli"
    assert main(["evaluate", str(runs / "tiny"), str(events), "--labels", str(labels), "--target", "died",
                 "--out", str(out)]) == 0
    cli = json.loads((out / "metrics.json").read_text())["models"]
    for name, label in (("lr", "logistic regression"), ("gru", "GRU")):
        assert shown.loc[label, "auroc"] == pytest.approx(cli[name]["auroc"], abs=1e-12)
        lo, hi = cli[name]["auroc_ci"]
        assert shown.loc[label, "auroc 95% CI"] == f"[{lo:.3f}, {hi:.3f}]"
    subgroups = next(d.value for d in at.dataframe if "n_positive" in d.value.columns)
    assert set(subgroups["attribute"]) == {"Age"}
