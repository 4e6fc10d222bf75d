"""Compare page: trains on a tiny uploaded cohort with the test preset, shows the current run, reopens it; a
second training becomes the current run with its own thresholds."""
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.state import CURRENT_RUN, DATA_SOURCE, DataSource
from core.config import DataConfig
from core.runs.store import RunSummary, load_run
from tests.helpers.cohorts import make_tiny_cohort
from tests.helpers.pages import finish_jobs, page_job, tiny_upload, unescape

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _folders(tmp_path, monkeypatch):
    """This test's saved runs (``tmp_path / "runs"``) and server folder for unsaved ones (``tmp_path / "tmp"``)."""
    monkeypatch.setenv("CHRONOSCOPE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(tmp_path / "tmp"))


def _upload(tmp_path, seed: int) -> DataSource:
    return tiny_upload(tmp_path, seed=seed)[0]


def _compare(source: DataSource | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    if source is not None:
        at.session_state[DATA_SOURCE] = source
    at.run()
    at.switch_page("app/pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _train(at: AppTest, models: list, seed: int = 0, save: bool = False) -> AppTest:
    """Press **Train and compare** (test preset) and wait for the job."""
    at.multiselect(key="compare.models").set_value(models)
    at.selectbox(key="compare.preset").set_value("test")
    at.number_input(key="compare.seed").set_value(seed)
    if save:
        at.checkbox(key="compare.save").check()
    at.button[0].click().run()          # the form's submit button: a background job
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _current(at: AppTest) -> Path:
    """The folder of the session's current run."""
    return Path(at.session_state[CURRENT_RUN])


def test_compare_page_trains_and_reopens(tmp_path):
    at = _train(_compare(_upload(tmp_path, 5)), ["lr", "gbm", "gru"], save=True)
    folder = _current(at)                                          # the new run is the current run
    assert folder.parent == tmp_path / "runs" and set(load_run(folder).models) == {"lr", "gbm", "gru"}
    assert any("vs" in m.value for m in at.markdown)              # paired tests in plain words
    assert len(list((tmp_path / "runs").iterdir())) == 1
    at.slider(key=f"compare.thr.{folder.name}.lr").set_value(0.2).run()     # threshold slider
    assert not at.exception
    at.button(key="compare.open").click().run()                    # reopen the saved run
    assert not at.exception, [e.value for e in at.exception]
    assert _current(at) == folder and set(at.dataframe[0].value["model"]) == {
        "logistic regression", "gradient boosting", "GRU"}
    assert folder.stat().st_mode & 0o777 == 0o700 and (folder / "metrics.json").stat().st_mode & 0o777 == 0o600
    assert at.button(key="compare.delete").disabled                # asks first
    at.checkbox(key=f"compare.delete_sure.{folder}").check().run()
    at.button(key="compare.delete").click().run()                  # deleted, with its files
    assert not at.exception, [e.value for e in at.exception]
    assert not folder.exists() and CURRENT_RUN not in at.session_state


def test_an_unsaved_run_is_kept_in_the_temporary_folder_until_saved(tmp_path):
    at = _train(_compare(_upload(tmp_path, 8)), ["lr"])
    folder = _current(at)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())   # nothing in the runs folder
    assert folder.is_relative_to(tmp_path / "tmp") and (folder / "manifest.json").exists()
    at.button(key="compare.save_now").click().run()
    assert not at.exception, [e.value for e in at.exception]
    saved = _current(at)                                           # the saved copy is the current run now
    assert saved.parent == tmp_path / "runs" and (saved / "manifest.json").exists() and not folder.exists()


@pytest.mark.slow  # ~6 s; in the browser too (tests/app/views_e2e.py)
def test_a_second_training_becomes_the_current_run_with_its_own_thresholds(tmp_path):

    def shown(at: AppTest, folder: Path) -> tuple[float, float, float]:
        """(slider, leaderboard threshold, the run's saved threshold) of the threshold section's model."""
        name = at.selectbox(key=f"compare.threshold_model.{folder.name}").value
        ev = RunSummary.from_run(load_run(folder)).results[name]
        board = at.dataframe[0].value.set_index("model")
        return at.slider(key=f"compare.thr.{folder.name}.{name}").value, board.loc[ev.label, "threshold"], ev.threshold

    at = _train(_compare(_upload(tmp_path, 6)), ["lr"])
    first = _current(at)
    slider, board, saved = shown(at, first)
    assert slider == pytest.approx(round(saved, 3)) and board == pytest.approx(saved)
    at.slider(key=f"compare.thr.{first.name}.lr").set_value(0.9).run()       # the user moves the first run's slider
    assert not at.exception, [e.value for e in at.exception]
    _train(at, ["lr"], seed=3)                                     # another split: other thresholds
    second = _current(at)
    assert second != first
    slider, board, saved = shown(at, second)
    assert slider == pytest.approx(round(saved, 3)) and board == pytest.approx(saved)
    assert round(saved, 3) != round(RunSummary.from_run(load_run(first)).results["lr"].threshold, 3)
    assert [s.key for s in at.slider] == [f"compare.thr.{second.name}.lr"]     # the first run's slider is gone


def test_a_run_opened_on_other_data_says_so(tmp_path):
    from core.training.experiment import run_experiment
    from core.runs.store import save_run
    save_run(run_experiment(make_tiny_cohort(n_patients=50, seed=2), ["lr"], preset="test"),
             tmp_path / "runs" / "tiny-run")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.run()                                             # the demo data
    at.switch_page("app/pages/compare.py").run()
    at.button(key="compare.open").click().run()
    assert not at.exception, [e.value for e in at.exception]
    warned = [w.value for w in at.warning]
    assert any("trained on other data" in w for w in warned), warned


@pytest.mark.slow  # ~7 s; reuse: tests/core/runs/test_reuse.py, trajectories: tests/core/runs/test_predict.py
def test_an_identical_training_is_reused_and_the_timeline_shows_the_risk_trajectory(tmp_path):
    at = _train(_compare(_upload(tmp_path, 7)), ["lr", "gru"], save=True)
    _, first = page_job(at, "compare")
    assert not first.reused and _current(at) == first.folder
    at.button[0].click().run()                                     # the same request again
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    _, again = page_job(at, "compare")
    assert again.reused and again.folder == first.folder and _current(at) == first.folder
    assert any("Nothing was recomputed" in i.value for i in at.info), [i.value for i in at.info]
    assert len(list((tmp_path / "runs").iterdir())) == 1            # no duplicate run
    at.switch_page("app/pages/timeline.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("from the data up to each hour" in c.value for c in at.caption), [c.value for c in at.caption]
    run = load_run(first.folder)                                   # one model by default: the best on validation
    best = run.best_model
    assert at.multiselect(key=f"timeline.models.{run.name}").value == [best]
    labels = {"lr": "logistic regression", "gru": "GRU"}
    fig = at.get("plotly_chart")[0].proto.spec
    assert f'"name":"{labels[best]}"' in fig and f'"name":"{labels[({"lr", "gru"} - {best}).pop()]}"' not in fig
    at.multiselect(key=f"timeline.models.{run.name}").set_value(["lr", "gru"]).run()      # the others on request
    fig = at.get("plotly_chart")[0].proto.spec
    assert '"name":"GRU"' in fig and '"name":"logistic regression"' in fig
    split = run.split_of(at.selectbox(key="timeline.patient").value)
    assert any(f"A **{split}** patient of this run" in c.value for c in at.caption)


def test_the_timeline_marks_kept_implausible_values_and_uses_edited_code_meanings(tmp_path):
    import pandas as pd

    from app.state import CODE_TABLE
    rows = "".join(f"p{i},{h},HR,{70 + i}\n" for i in range(30) for h in range(3))
    events = ("patient_id,time,variable,value\n" + "".join(f"p{i},0,Gender,{i % 2}\n" for i in range(30)) + rows
              + "p0,1.5,Temp,-17.8\n").encode()
    labels = b"patient_id,died\n" + b"".join(f"p{i},{i % 2}\n".encode() for i in range(30))
    source = DataSource("upload", (("e.csv", events),), ("l.csv", labels),
                        DataConfig(target="died", keep_implausible=True))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.session_state[DATA_SOURCE] = source
    at.session_state[CODE_TABLE] = pd.DataFrame({"variable": ["Gender"], "code": [0.0], "meaning": ["woman (site A)"]})
    at.run()
    at.switch_page("app/pages/timeline.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="timeline.patient").value == "p0"
    at.multiselect(key="timeline.vars.p0").set_value(["HR", "Temp"]).run()
    assert any(m.value == "woman (site A)" for m in at.metric), [m.value for m in at.metric]
    spec = at.get("plotly_chart")[0].proto.spec
    assert "outside the plausible range" in spec


def test_decision_curves_and_the_report_download_of_the_open_run(tmp_path):
    from core.training.experiment import run_experiment
    from core.runs.report import build_report
    from core.runs.store import load_run, save_run
    cohort = make_tiny_cohort(n_patients=60, seed=4)
    save_run(run_experiment(cohort, ["lr", "gbm"], preset="test"), tmp_path / "runs" / "dca-run")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.run()
    at.switch_page("app/pages/compare.py").run()
    at.button(key="compare.open").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(t.label == "Decision curves" for t in at.tabs), [t.label for t in at.tabs]
    assert any("net benefit" in c.value and "treat all" in c.value for c in at.caption), [c.value for c in at.caption]
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    dca = [s for s in specs if "Decision curves" in s]
    assert len(dca) == 1 and '"name":"treat all"' in dca[0] and '"name":"logistic regression"' in dca[0]
    buttons = [b for b in at.get("download_button") if "Report (HTML" in b.proto.label]
    assert len(buttons) == 1, [b.proto.label for b in at.get("download_button")]
    # what the button's deferred function builds (login off: the owner check needs no session)
    from app.workspace import run_report
    from core.exceptions import CoreError
    text = run_report(str(tmp_path / "runs" / "dca-run"))()
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")     # plotly's div ids
    assert uuid.sub("id", text) == uuid.sub("id", build_report(load_run(tmp_path / "runs" / "dca-run")))
    assert "logistic regression" in text and "gradient boosting" in text and "dca-run" in text
    with pytest.raises(CoreError, match="not found among your runs"):
        run_report(str(tmp_path / "elsewhere" / "dca-run"))


@pytest.mark.slow  # ~6 s; run pairs: tests/core/runs/test_pair.py
def test_the_current_run_is_compared_with_a_baseline_run_on_a_click(tmp_path):
    """Against another run: nothing runs until the click; the table is core.runs.pair's, on the same patients."""
    from core.runs.pair import compare_runs
    at = _train(_compare(_upload(tmp_path, 7)), ["lr"])
    first = _current(at)
    assert "Train or open a second run" in " ".join(c.value for c in at.caption)
    at = _train(at, ["lr", "gbm"])                                 # the same seed: the same split
    second = _current(at)
    assert at.selectbox(key=f"compare.pair_base.{second.name}").value == str(first)
    assert not any("auroc A" in d.value.columns for d in at.dataframe)            # nothing computed unasked
    at.button(key="compare.pair_go").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    shown = next(d.value for d in at.dataframe if "auroc A" in d.value.columns)
    expected = compare_runs(load_run(first), load_run(second)).table
    assert shown["model"].tolist() == ["logistic regression"]
    assert shown.drop(columns="verdict").equals(expected.drop(columns="verdict"))
    assert any("Differences are B minus A" in unescape(c.value) for c in at.caption)


def test_subgroups_of_the_current_run_on_a_click(tmp_path):
    """Subgroups: nothing until the click; then core's table for the run's test patients, and a forest plot."""
    from core.evaluation.subgroups import subgroup_metrics
    source, cohort = tiny_upload(tmp_path, n_patients=120, seed=9)
    at = _train(_compare(source), ["lr", "gbm"])
    assert not any("n_positive" in d.value.columns for d in at.dataframe)
    at.button(key="compare.subgroups_go").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    shown = next(d.value for d in at.dataframe if "n_positive" in d.value.columns)
    expected = subgroup_metrics(RunSummary.from_run(load_run(_current(at))).results, cohort.static, ["Age"])
    model = at.selectbox(key="compare.subgroup_model").value
    assert shown.reset_index(drop=True).equals(
        expected[expected["model"] == model].drop(columns="model").reset_index(drop=True))
    assert shown["n"].sum() == len(load_run(_current(at)).splits["test"])
    assert any("AUROC per subgroup" in str(c.proto.spec) for c in at.get("plotly_chart"))
    from core.runs.report import build_report
    html = build_report(load_run(_current(at)))                # kept with the run: in its report
    assert "Test patients by static attribute" in html
    again = _compare(source)                                     # a new session shows the kept table, unasked
    assert any("n_positive" in d.value.columns for d in again.dataframe)


@pytest.mark.slow  # ~7 s; cross-validation kept with the run: tests/core/cli/test_cli_train.py
def test_cross_validation_of_the_current_run_is_kept_with_it_and_in_its_report(tmp_path):
    """Cross-validation: a job on a click; the folds are kept with the run (cv.csv/cv.json) and the page and the
    report show the same leaderboard and the time-order verdict."""
    from core.runs.attached import read_cv
    from core.runs.report import build_report
    source, cohort = tiny_upload(tmp_path, n_patients=90, seed=4)
    at = _train(_compare(source), ["lr", "gru"])
    assert not any("auroc_mean" in d.value.columns for d in at.dataframe)
    at.selectbox(key="compare.cv_folds").set_value(3)
    at.number_input(key="compare.cv_repeats").set_value(2)
    at.button(key="compare.cv_go").click().run()
    finish_jobs(at)
    assert not at.exception, [e.value for e in at.exception]
    folds, info = read_cv(_current(at))
    assert len(folds) == 2 * 3 * 2 and info["repeats"] == 2 and set(folds["repeat"]) == {0, 1}
    shown = next(d.value for d in at.dataframe if "auroc_mean" in d.value.columns).set_index("label")
    assert shown.loc["GRU", "auroc_mean"] == pytest.approx(folds[folds.model == "gru"].auroc.mean())
    assert shown.loc["GRU", "n_folds"] == 6
    verdict = info["order_verdict"]["sentence"]
    assert verdict.startswith("Across 6 folds, ") and any(verdict in unescape(m.value) for m in at.markdown)
    html = build_report(load_run(_current(at)))
    assert "3-fold x 2 repeats cross-validation" in html and "Does time order help here?" in html


def test_the_curves_open_with_the_best_two_models_on_validation(tmp_path):
    at = _train(_compare(_upload(tmp_path, 8)), ["lr", "gbm", "gru"])
    run = load_run(_current(at))
    val = {n: run.metrics["models"][n]["validation_auroc"] for n in run.models}
    assert at.multiselect(key=f"compare.curves.{run.name}").value == sorted(val, key=lambda n: -val[n])[:2]
