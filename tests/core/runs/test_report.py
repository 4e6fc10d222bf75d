"""The HTML report of a run (core.runs.report, ``python -m core report``): content, offline, escaping, exit codes."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from core.cli import main
from core.runs.report import TRIPOD_AI_ITEMS, build_report, find_timeorder
from core.runs.store import copy_run, load_run
from tests.helpers.cohorts import make_online_cohort, make_tiny_cohort, write_long
from tests.helpers.paths import ROOT

_PLOTLY_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
_EXTERNAL = re.compile(r"""(?:\b(?:src|href)\s*=\s*["']?\s*|url\(\s*["']?\s*)(?:https?:)?//""", re.I)


def _without_plotly(text: str) -> str:
    """The report with the inlined plotly.js library removed (checked to be there exactly once first)."""
    import plotly.offline
    js = plotly.offline.get_plotlyjs()
    assert text.count(js) == 1
    return text.replace(js, "")


@pytest.fixture(scope="module")
def stay_run(trained_run, tmp_path_factory):
    """The session's run (lr, gbm, gru; tests/conftest.py) copied as ``runs/stay``, alone in its folder: the report
    names the run by its folder and looks beside it for a time-order result."""
    return copy_run(trained_run.run_dir, tmp_path_factory.mktemp("report") / "runs" / "stay")


@pytest.fixture(scope="module")
def stay_report(stay_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "report.html"
    assert main(["report", str(stay_run), "--out", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def test_report_holds_every_model_and_its_metrics(stay_run, stay_report):
    metrics = json.loads((stay_run / "metrics.json").read_text())["models"]
    for name, label in (("lr", "logistic regression"), ("gbm", "gradient boosting"), ("gru", "GRU")):
        assert label in stay_report
        m = metrics[name]
        lo, hi = m["auroc_ci"]
        assert f"{m['auroc']:.3f} [{lo:.3f}, {hi:.3f}]" in stay_report         # AUROC with its CI
        assert f"{m['brier']:.3f}" in stay_report and f"{m['threshold']:.3f}" in stay_report
    for section in ("Data", "Split", "Models and metrics", "Paired tests", "Decision curves", "Time order",
                    "Explanations", "Reproducibility", "TRIPOD+AI checklist"):
        assert f">{section}</h2>" in stay_report
    assert " vs logistic regression: " in stay_report                          # the paired tests in words
    cfg = json.loads((stay_run / "config.json").read_text())
    assert cfg["fingerprint"] in stay_report and "scikit-learn" in stay_report
    assert stay_report.count("plotly-graph-div") == 5                          # leaderboard, ROC, PR, calibration, DCA
    assert "Not computed." in stay_report                                      # no timeorder.json, no explanations
    for item, _, _ in TRIPOD_AI_ITEMS:
        assert f"<td>{item}</td>" in stay_report
    assert "not answered by this tool: the author must add it" in stay_report


def test_report_shows_no_server_path(stay_run, stay_report):
    # only the run's name: never where the run (or the data it was trained on) lives on the server
    assert str(stay_run.parent) not in stay_report and str(stay_run) not in stay_report
    assert "python -m core explain stay DATA" in stay_report and "--run stay" in stay_report


def test_report_makes_no_network_request(stay_report):
    rest = _without_plotly(stay_report)
    assert not _EXTERNAL.findall(rest), _EXTERNAL.findall(rest)[:3]
    assert "<link" not in rest and "@import" not in rest and "<img" not in rest and "<iframe" not in rest
    assert rest.count("<script") == 1 + 5                                      # plotly.js + one per figure
    assert "@media print" in rest and "page-break-before" in rest


def test_names_from_the_data_are_escaped(tmp_path):
    from core.data.cohort import make_cohort
    from core.training.experiment import run_experiment
    from core.runs.store import save_run
    bad = "<script>alert(1)</script>"
    c = make_tiny_cohort(n_patients=50, seed=2)
    events = c.events.assign(variable=c.events["variable"].astype(str).replace("HR", bad))
    cohort = make_cohort(events, c.static.rename(columns={"Age": '<img src="https://x.test/a.png">'}), c.labels,
                         target="<b>died</b>")
    run_dir = save_run(run_experiment(cohort, ["lr", "gbm"], preset="test"), tmp_path / "runs" / "<i>run</i>")
    text = _without_plotly(build_report(load_run(run_dir)))
    assert bad not in text and "<b>died</b>" not in text and "<i>run</i>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;b&gt;died&lt;/b&gt;" in text
    assert not _EXTERNAL.findall(text)


def test_timeorder_verdict_of_the_same_data_is_included(stay_run, tmp_path):
    folder = tmp_path / "runs"
    shutil.copytree(stay_run, folder / "stay")
    fp = json.loads((stay_run / "config.json").read_text())["fingerprint"]
    (folder / "to").mkdir()
    (folder / "to" / "timeorder.json").write_text(json.dumps({
        "verdict": "Order <matters> here.", "data_fingerprint": fp, "n_patients": {"train": 40, "test": 12},
        "ablation": {"auroc_ordered": 0.8, "auroc_shuffled": 0.7, "auroc_shuffled_test": 0.6}, "gap": None}))
    (folder / "other").mkdir()
    (folder / "other" / "timeorder.json").write_text(json.dumps({"verdict": "elsewhere", "data_fingerprint": "x"}))
    found, other = find_timeorder(folder / "stay", fp)
    assert found == folder / "to" / "timeorder.json" and other == [folder / "other" / "timeorder.json"]
    text = build_report(load_run(folder / "stay"), n_bootstrap=0)
    assert "Order &lt;matters&gt; here." in text and "elsewhere" not in text and "0.800" in text
    assert "to/timeorder.json beside the run folder; its own split" in text and str(tmp_path) not in text


def test_online_run_report(tmp_path):
    from tests.helpers.cohorts import wide_csv
    wide_csv(make_online_cohort(60, seed=1), tmp_path / "hourly.csv")
    run_dir = tmp_path / "online"
    assert main(["train", str(tmp_path / "hourly.csv"), "--task", "online", "--target", "Event", "--out",
                 str(run_dir), "--models", "lr,gru", "--preset", "test", "--max-hours", "40", "--bootstrap", "20",
                 "--no-progress"]) == 0
    out = tmp_path / "r.html"
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "patient-hour" in text and "alarmed before onset" in text and "GRU" in text
    assert "paired bootstrap over patients" in text
    assert not _EXTERNAL.findall(_without_plotly(text))


def test_cli_errors_exit_2_with_a_message(stay_run, tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(stay_run), "--out", str(tmp_path)]) == 2          # --out is a folder
    assert "existing folder" in capsys.readouterr().err
    tampered = tmp_path / "tampered"
    shutil.copytree(stay_run, tampered)
    metrics = tampered / "metrics.json"
    metrics.write_text(metrics.read_text().replace('"auroc"', '"auroc" ', 1))
    assert main(["report", str(tampered), "--out", str(tmp_path / "t.html")]) == 2
    err = capsys.readouterr().err
    assert "metrics.json" in err and "changed" in err and "Traceback" not in err
    assert not (tmp_path / "t.html").exists() and not (tmp_path / "r.html").exists()
    assert main(["report", str(stay_run), "--out", str(tmp_path / "x.html"), "--timeorder",
                 str(tmp_path / "none.json")]) == 2
    assert "--timeorder" in capsys.readouterr().err


@pytest.mark.slow  # a browser
def test_report_opens_offline_in_a_browser(stay_report, tmp_path):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("chromium not installed (apt-get install chromium): browser check skipped")
    sync_api = pytest.importorskip("playwright.sync_api")
    page_file = tmp_path / "report.html"
    page_file.write_text(stay_report, encoding="utf-8")
    requests, errors = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_file.as_uri())
            page.wait_for_function("document.querySelectorAll('.plotly-graph-div .main-svg').length >= 5",
                                   timeout=30_000)
        finally:
            browser.close()
    assert requests == [page_file.as_uri()], requests                         # the file itself, nothing else
    assert not errors, errors


@pytest.mark.slow  # real data
def test_report_of_a_set_a_run(tmp_path):
    data = ROOT.parent / "shared/data/physionet2012"
    if not (data / "set-a.csv.gz").is_file():
        pytest.skip("../shared/data/physionet2012 not found: the real-data report test needs the shared PhysioNet "
                    "2012 set A")
    run_dir = tmp_path / "seta"
    assert main(["train", str(data / "set-a.csv.gz"), "--labels", str(data / "outcomes-a.csv"), "--target",
                 "in_hospital_death", "--out", str(run_dir), "--preset", "test", "--models", "lr,gbm",
                 "--bootstrap", "50", "--no-progress"]) == 0
    out = tmp_path / "seta.html"
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "in_hospital_death" in text and "600" in text and "GCS" in text and "gradient boosting" in text
    assert "vs logistic regression" in text or "vs gradient boosting" in text
    assert not _EXTERNAL.findall(_without_plotly(text))


def test_run_keeps_its_validation_report_and_the_report_shows_it(tmp_path):
    """A training on a file with a non-numeric value: the run's data_report.json holds the finding and the
    row accounting, load_run reads it (manifest-checked), and the HTML report shows both and the training
    patients' events."""
    events, labels = write_long(make_tiny_cohort(n_patients=40, seed=5), tmp_path)
    text = events.read_text().splitlines()
    text.append("p0003,01:00,HR,not-a-number")
    events.write_text("\n".join(text) + "\n")
    run_dir = tmp_path / "run"
    assert main(["train", str(events), "--labels", str(labels), "--target", "died", "--out", str(run_dir),
                 "--preset", "test", "--models", "lr", "--bootstrap", "20", "--no-progress"]) == 0
    run = load_run(run_dir)
    saved = run.data_report["report"]
    assert saved["rows_read"] == saved["rows_used"] + sum(saved["rows_excluded"].values())
    assert sum(saved["rows_excluded"].values()) >= 1
    assert any("not-a-number" in " ".join(f["examples"]) for f in saved["findings"])
    counts = run.data_report["split_counts"]
    assert counts["train"]["patients"] == len(run.splits["train"])
    html_text = build_report(run)
    assert "Validation report</b> of the data the run was trained on" in html_text
    assert f"{saved['rows_read']:,} rows read" in html_text and "not-a-number" in html_text
    k, m = counts["train"]["positives"], counts["train"]["patients"]
    assert f"{k:,} events" in html_text and f"{k / m:.3f}" in html_text
    (run_dir / "data_report.json").write_text("{}")                 # tampered: the run is refused
    with pytest.raises(Exception, match="data_report.json"):
        load_run(run_dir)


@pytest.mark.parametrize("content, says", [
    ("not json at all", "not valid JSON"),
    ("[1, 2]", "the file holds list"),
    ('{"verdict": 5, "data_fingerprint": "x"}', "verdict = 5 is not text"),
    ('{"data_fingerprint": "x"}', "verdict is missing"),
    ('{"verdict": "v", "data_fingerprint": "x", "ablation": [1]}', "ablation = [1] is not a JSON object"),
    ("[" * 5000 + "]" * 5000, "nested more than"),
])
def test_report_refuses_a_timeorder_file_it_cannot_read(stay_run, tmp_path, capsys, content, says):
    """``--timeorder FILE`` that is not a time-order result: exit 2 naming the file, no report written."""
    given = tmp_path / "mine.json"
    given.write_text(content)
    out = tmp_path / "r.html"
    assert main(["report", str(stay_run), "--out", str(out), "--timeorder", str(given)]) == 2
    err = capsys.readouterr().err
    assert f"--timeorder {given}" in err and says in err and "Traceback" not in err
    assert "python -m core timeorder --out DIR" in err
    assert not out.exists()
