"""A self-contained HTML report of one saved run (``python -m core report RUN --out report.html``).

One file that opens without any network request: plotly.js is inlined once, in one ``<script>``
(:func:`plotly.offline.get_plotlyjs`), every figure is written with ``include_plotlyjs=False`` and
``full_html=False``, and there are no external fonts, style sheets or images. Every string that comes
from the data (target, variable names, folder names, anything read from the run's JSON files) is
``html.escape``'d; plotly labels are escaped by :mod:`core.plots`.

It holds what the run folder saved (:mod:`core.runs.store`): the data summary (target, task, variables, data
fingerprint), the split (patients per split, prevalence), every model's test metrics with 95% CIs, the
paired tests in words (:meth:`core.runs.store.Run.evaluations`), ROC / PR / calibration and decision curves
(:mod:`core.evaluation.decision`), the cross-validation summary when ``train --cv`` saved one (attached to the run, or
``cv.json`` beside its files), the time-order verdict (the run's own ``analyses/timeorder.json``, else a
``timeorder.json`` of the same data next to the run folder), the explanations attached to the run
(``analyses/explain-*.json``: the 10 most important variables per model), library versions, the
configuration, and the TRIPOD+AI checklist items with where this report answers each (or that the author
must). Only the run's name is shown, never a path of the machine that built the report.

The validation report of the training data comes from the run's ``data_report.json`` (kept since
runs save it; an older run's report says it is not there). What the run does not hold (no time-order
analysis, no explanation attached), the report says is not computed, and how to compute it.
"""
from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path

import numpy as np
import plotly.offline

from core import plots
from core.evaluation.decision import HOW_TO_READ, curves_from_results
from core.exceptions import CoreError, RunError
from core.runs.runfiles import check_timeorder, parse_json, read_json_file, size_limit
from core.runs.store import ANALYSES, list_attached, read_attached
from core.analysis.timeorder import TIMEORDER_FILE

__all__ = ["build_report", "write_report", "find_timeorder", "read_given_timeorder", "TRIPOD_AI_ITEMS"]

_NOT_ANSWERED = "not answered by this tool: the author must add it"

#: TRIPOD+AI (Collins GS et al., BMJ 2024;385:e078378) items, short topics, and the report section that
#: answers each (None: the author must add it). Only items this report really answers point to a section.
TRIPOD_AI_ITEMS = (
    ("1", "Title: development/evaluation of a prediction model, target population, outcome", None),
    ("2", "Abstract (TRIPOD+AI for Abstracts)", None),
    ("3a", "Background: healthcare context, rationale, existing models", None),
    ("3b", "Target population, intended purpose and users", None),
    ("3c", "Known health inequalities between sociodemographic groups", None),
    ("4", "Objectives: development and/or validation", None),
    ("5a", "Data sources, rationale, representativeness", None),
    ("5b", "Dates of data collection, accrual, follow-up", None),
    ("6a", "Setting, number and location of centres", None),
    ("6b", "Eligibility criteria", None),
    ("6c", "Treatments received and how they were handled", None),
    ("7", "Data preparation: pre-processing and quality checking",
     "data (variables, window, the validation report: rows read, used and excluded by reason, every finding) "
     "and configuration"),
    ("8a", "Outcome definition and time horizon", "data (target, task shape, hours used or predicted)"),
    ("8b", "Qualifications of outcome assessors", None),
    ("8c", "Blinding of outcome assessment", None),
    ("9a", "Choice of initial predictors", "data (variables the models read; why they were chosen: author)"),
    ("9b", "Definition of predictors, how and when measured", "data (features computed from the hours used)"),
    ("9c", "Qualifications of predictor assessors", None),
    ("10", "Sample size and its justification", "split (patients and events per split; justification: author)"),
    ("11", "Missing data handling", "data (missingness is encoded as masks and time since last observation)"),
    ("12a", "How the data were used: partitioning", "split"),
    ("12b", "Predictor handling: functional form, rescaling, standardisation", "configuration"),
    ("12c", "Model type, building steps, hyper-parameters, internal validation", "models and configuration"),
    ("12d", "Heterogeneity across clusters (hospitals, countries)", None),
    ("12e", "Performance measures and plots, model comparison", "metrics, paired tests, curves, decision curves"),
    ("12f", "Model updating (e.g. recalibration)", "models and metrics (whether the models were refitted on "
                                                   "training + validation patients; no recalibration)"),
    ("12g", "How predictions were calculated (code, object, API)", "reproducibility"),
    ("13", "Class imbalance methods", "configuration (stay task: no re-weighting; online task: the recurrent "
                                      "models up-weight positive hours, see docs/methods.md)"),
    ("14", "Fairness approaches", None),
    ("15", "Model output and thresholds", "metrics (probabilities; each threshold chosen on validation patients)"),
    ("16", "Differences between development and evaluation data", "split (one data set, split by patient)"),
    ("17", "Ethical approval and consent", None),
    ("18a", "Funding", None),
    ("18b", "Conflicts of interest", None),
    ("18c", "Protocol", None),
    ("18d", "Registration", None),
    ("18e", "Data sharing", None),
    ("18f", "Code sharing", "reproducibility (library versions, request key; where the code is: author)"),
    ("19", "Patient and public involvement", None),
    ("20a", "Flow of participants, numbers with and without the outcome",
     "split (patients and events per split; training events from the run's data report, stay task) and data "
     "(rows excluded by reason)"),
    ("20b", "Characteristics of the data (predictors, events, missing data)",
     "data and split (counts only; characteristics per group: author)"),
    ("20c", "Evaluation vs development data: predictor distributions", None),
    ("21", "Participants and events in each analysis", "split (patients and events per split)"),
    ("22", "Full model specification (object, code) for new predictions", "reproducibility (the run folder)"),
    ("23a", "Performance with confidence intervals (and key subgroups)", "metrics and curves (subgroups: author)"),
    ("23b", "Heterogeneity in performance across clusters", None),
    ("24", "Model updating results", None),
    ("25", "Interpretation, including fairness", None),
    ("26", "Limitations", None),
    ("27a", "Handling poor-quality or missing input data in practice", None),
    ("27b", "User interaction and expertise required", None),
    ("27c", "Next steps for future research", None),
)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 16px}
h1{font-size:1.6em;margin-bottom:0}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#555;font-size:.92em}.warn{background:#fff4e5;border-left:4px solid #f0a030;padding:6px 10px}
nav ol{columns:2}code{background:#f5f5f5;padding:0 3px}.figure{margin:12px 0;page-break-inside:avoid}
@media print{section{page-break-before:always}nav,button,.no-print,.modebar{display:none!important}
body{max-width:none;margin:0}}
"""


def _e(value) -> str:
    """Plain text for HTML (quotes too)."""
    return html.escape(str(value), quote=True)


def _f(v, digits: int = 3) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return ""
    return f"{v:.{digits}f}" if np.isfinite(v) else ""


def _table(header, rows, num_cols=()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="num">{_e(c)}</td>' if i in num_cols else f"<td>{_e(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(fig) -> str:
    body = fig.to_html(include_plotlyjs=False, full_html=False, config={"displaylogo": False, "responsive": True})
    return f'<div class="figure">{body}</div>'


def _read_json(path: Path):
    """An optional JSON file near the run (a timeorder.json beside it, cv.json): its content, or None when it cannot
    be read (:func:`core.runs.runfiles.read_json_file`: size and depth limits)."""
    try:
        return read_json_file(path, name=path.name, max_bytes=size_limit("analyses/any"), allow_nan=True)
    except CoreError:
        return None


def read_given_timeorder(path: str | Path) -> dict:
    """The ``timeorder.json`` given with ``--timeorder``, read and checked (:func:`core.runs.runfiles.check_timeorder`).

    Raises
    ------
    CoreError
        Not a file, too large, not JSON, or not shaped like a time-order result; the message names the file.
    """
    path = Path(path)
    fix = ("pass the timeorder.json written by `python -m core timeorder --out DIR` (DIR/timeorder.json), or leave "
           "--timeorder out.")
    if not path.is_file():
        raise CoreError(f"--timeorder {path} is not a file; {fix}")
    value = read_json_file(path, name=f"--timeorder {path}", max_bytes=size_limit("analyses/any"), allow_nan=True,
                           error=CoreError, fix=fix)
    return check_timeorder(value, f"--timeorder {path}")


def find_timeorder(run_dir: str | Path, fingerprint: str) -> tuple[Path | None, list[Path]]:
    """A ``timeorder.json`` of the same data in or next to ``run_dir``: in the folder, beside it, or in a
    sibling folder (``python -m core timeorder --out DIR`` writes ``DIR/timeorder.json``).

    Returns
    -------
    (path or None, other_data)
        The newest one whose ``data_fingerprint`` is the run's, and those found for other data (not used).
    """
    folder = Path(run_dir)
    candidates = [folder / "timeorder.json", folder.parent / "timeorder.json",
                  *sorted(folder.parent.glob("*/timeorder.json"))]
    same, other = [], []
    for p in dict.fromkeys(candidates):
        if not p.is_file() or p.is_symlink():
            continue
        d = _read_json(p)
        if isinstance(d, dict) and str(d.get("data_fingerprint", "")) == str(fingerprint) and fingerprint:
            same.append(p)
        else:
            other.append(p)
    same.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return (same[0] if same else None), other


def _validation_section(run) -> str:
    """The saved validation report of the training data: row accounting and every finding."""
    saved = (run.data_report or {}).get("report") if run.data_report else None
    if not saved:
        return ("<p><b>Validation report.</b> Not in this run (saved by a version that did not keep it). Training "
                "only runs on data whose validation found no blocking error; run <code>python -m core validate DATA "
                "...</code> on the same file (the data fingerprint above identifies it) and attach its report.</p>")
    excluded = saved.get("rows_excluded") or {}
    parts = [f"<p><b>Validation report</b> of the data the run was trained on: {int(saved.get('rows_read', 0)):,} rows "
             f"read, {int(saved.get('rows_used', 0)):,} used, {sum(int(v) for v in excluded.values()):,} excluded.</p>"]
    if excluded:
        parts.append(_table(["excluded rows, by reason", "rows"],
                            [[k, f"{int(v):,}"] for k, v in sorted(excluded.items(), key=lambda kv: -int(kv[1]))],
                            num_cols={1}))
    findings = saved.get("findings") or []
    if findings:
        parts.append(_table(["level", "finding", "count", "examples", "how to fix"],
                            [[f.get("level", ""), f.get("message", ""), f"{int(f.get('count') or 0):,}",
                              "; ".join(map(str, f.get("examples") or [])), f.get("fix", "")] for f in findings],
                            num_cols={2}))
    else:
        parts.append("<p>No findings: every row was used as it was.</p>")
    return "".join(parts)


def _prevalence_rows(run, online: bool) -> list:
    pr = run.predictions
    rows = []
    first = (run.config.get("models") or [None])[0]
    for split in ("train", "validation", "test"):
        ids = run.splits.get(split, [])
        d = pr[(pr["split"] == split) & (pr["model"] == first)] if len(pr) and first is not None else pr.iloc[:0]
        if not len(d):
            saved = ((run.data_report or {}).get("split_counts") or {}).get(split) or {}
            if "positives" in saved and saved.get("patients"):
                k, m = int(saved["positives"]), int(saved["patients"])
                rows.append([split, f"{len(ids):,}", f"{k:,} events", f"{k / m:.3f}", "no predictions kept for "
                             "training patients; counts from the run's data report"])
                continue
            rows.append([split, f"{len(ids):,}", "", "", "not saved in the run (only validation and test "
                                                       "predictions are kept)" if split == "train" else ""])
            continue
        if online:
            pos_pat = d.loc[d["y_true"] == 1, "patient_id"].nunique()
            rows.append([split, f"{len(ids):,}", f"{len(d):,} hours, {int(d['y_true'].sum()):,} positive",
                         f"{d['y_true'].mean():.3%} of hours", f"{pos_pat:,} patients with a positive hour"])
        else:
            rows.append([split, f"{len(ids):,}", f"{int(d['y_true'].sum()):,} events", f"{d['y_true'].mean():.3f}",
                         ""])
    return rows


def _metrics_table(run, results, online: bool) -> str:
    saved = run.metrics.get("models", {})
    keys = ["auroc", "auprc", "brier", "log_loss", "sensitivity", "specificity", "ppv", "npv", "min_se_ppv"]
    header = ["model", "AUROC", "AUPRC", "Brier", "log-loss", "sensitivity", "specificity", "PPV", "NPV",
              "min(Se, PPV)", "threshold"]
    alarm = ["alarmed_before_onset", "median_warning_hours", "false_alarms_per_patient_day"]
    if online:
        header += ["alarmed before onset", "median warning (h)", "false alarms / patient-day"]
    header.append("training (s)")
    rows = []
    for name in run.config.get("models", []):
        m = saved.get(name, {})
        label = results[name].label if name in results else m.get("label", name)
        r = [label]
        for k in keys:
            ci = m.get(f"{k}_ci") or [None, None]
            r.append(f"{_f(m.get(k))} [{_f(ci[0])}, {_f(ci[1])}]" if ci[0] is not None else _f(m.get(k)))
        r.append(_f(m.get("threshold")))
        if online:
            r += [_f(m.get(k), 2) for k in alarm]
        r.append(_f(m.get("train_seconds"), 1))
        rows.append(r)
    return _table(header, rows, num_cols=set(range(1, len(header))))


def _attached_json(run, name: str):
    """The run's attached analysis ``name`` (``analyses/NAME``, verified against its manifest) as JSON, or None."""
    raw = read_attached(run.folder, name)
    if raw is None:
        return None
    try:
        return parse_json(raw, name=f"{ANALYSES}/{name}")
    except CoreError:
        return None


def _timeorder_section(run, timeorder: Path | None) -> str:
    """The time-order verdict: the given file, else the run's own (attached), else one of the same data nearby.

    Only file and folder *names* are shown, never a path of the machine the report was built on."""
    fp = str(run.config.get("fingerprint", ""))
    other: list = []
    if timeorder is not None:
        found = Path(timeorder)
        where, d = f"{found.name} (given with --timeorder)", read_given_timeorder(found)
    else:
        d, where = _attached_json(run, TIMEORDER_FILE), f"{ANALYSES}/{TIMEORDER_FILE} of this run"
        if d is not None:               # a file of the run: checked like its others (RunError naming the field)
            d = check_timeorder(d, f"{ANALYSES}/{TIMEORDER_FILE}", error=RunError)
        else:
            found, other = find_timeorder(run.folder, fp)
            d = _read_json(found) if found is not None else None
            try:
                d = check_timeorder(d, found.name) if d is not None else None
            except CoreError:           # a file nearby, not the run's: shown only when it is a time-order result
                d = None
            where = "" if found is None else (f"{found.name} in the run folder" if found.parent == run.folder else
                                               f"{found.name} beside the run folder" if found.parent == run.folder.parent
                                               else f"{found.parent.name}/{found.name} beside the run folder")
    if not isinstance(d, dict):
        extra = (f" ({len(other)} timeorder.json file(s) nearby were computed on other data and are not shown.)"
                 if other else "")
        return ("<p><b>Not computed.</b> This run has no time-order analysis attached, and no timeorder.json of its "
                f"data was found next to it.{_e(extra)} Run <code>python -m core timeorder DATA --run "
                f"{_e(run.name)} --out DIR</code> (on the data it was trained on) to analyse this run and attach the "
                "result, then build the report again.</p>")
    out = [f"<p><b>Verdict.</b> {_e(d.get('verdict', ''))}</p>"]
    if str(d.get("data_fingerprint", "")) != fp:
        out.append(f'<p class="warn">This timeorder.json was computed on other data (fingerprint '
                   f'{_e(d.get("data_fingerprint"))}, the run\'s is {_e(fp)}).</p>')
    a = d.get("ablation") or {}
    rows = []
    if a:
        rows.append(["ablation: ordered hours", _f(a.get("auroc_ordered"))])
        rows.append(["ablation: retrained on shuffled hours", _f(a.get("auroc_shuffled"))])
        rows.append(["ablation: ordered model on shuffled hours", _f(a.get("auroc_shuffled_test"))])
    g = d.get("gap") or {}
    if g:
        ci = g.get("ci") or [None, None]
        rows.append([f"gap: {g.get('sequence_label', g.get('best_sequence', ''))} - "
                     f"{g.get('order_free_label', g.get('best_order_free', ''))}",
                     f"{_f(g.get('diff'))} [{_f(ci[0])}, {_f(ci[1])}]"])
    if rows:
        out.append(_table(["measurement (test AUROC)", "value"], rows, num_cols={1}))
    n = d.get("n_patients") or {}
    counts = ", ".join(f"{_e(k)} {_e(v)}" for k, v in n.items())
    request = str(run.config.get("request") or "")
    if d.get("run") and (d.get("run_request") == request if request and d.get("run_request") else
                         d.get("run") == run.name):
        out.append(f'<p class="note">From {_e(where)}: computed on this run\'s split ({counts} patients) and fitted '
                   "models, so the ordered arm and the gap are the metrics above; only the shuffled arm, the shorter "
                   "horizons and the tiers were refitted, on the same split and seed.</p>")
        out.extend(f'<p class="note">{_e(note)}</p>' for note in d.get("notes") or [])
    else:
        out.append(f'<p class="note">From {_e(where)}; its own split ({counts} patients), so its AUROCs differ from '
                   "the metrics above.</p>")
    return "".join(out)


def _external_section(run) -> str:
    """Every external validation kept with the run (``analyses/external-*.json``: ``python -m core evaluate`` and
    Predict's "Measure the run on these patients")."""
    names = sorted(n for n in list_attached(run.folder) if n.startswith("external-") and n.endswith(".json"))
    parts = []
    for n in names:
        d = _attached_json(run, n)
        m = d.get("metrics") if isinstance(d, dict) else None
        if not isinstance(m, dict) or not isinstance(m.get("models"), dict):
            continue
        rows = []
        for name, v in m["models"].items():
            if not isinstance(v, dict):
                continue
            ci = v.get("auroc_ci") if isinstance(v.get("auroc_ci"), list) and len(v["auroc_ci"]) == 2 else [None, None]
            rows.append([v.get("label", name), _f(v.get("auroc")), f"[{_f(ci[0])}, {_f(ci[1])}]",
                         _f(v.get("internal_auroc")), _f(v.get("auroc_difference")),
                         _f(v.get("calibration_in_the_large")), _f(v.get("calibration_slope"))])
        n_pat = (m.get("n_patients") or {}).get("external") if isinstance(m.get("n_patients"), dict) else None
        parts.append(f"<p>On {_e(n_pat)} labelled patients of {_e(m.get('source', ''))}:</p>"
                     + _table(["model", "AUROC", "95% CI", "internal AUROC", "difference", "calibration in the large",
                               "calibration slope"], rows, num_cols={1, 3, 4, 5, 6}))
        for w in m.get("warnings") or []:
            parts.append(f'<p class="note">{_e(w)}</p>')
        shift = d.get("shift") if isinstance(d.get("shift"), list) else []
        moved = [f"{_e(r.get('variable'))} ({_f(r.get('smd'), 2)})" for r in shift[:5] if isinstance(r, dict)]
        if moved:
            parts.append(f"<p>Moved most (standardised mean difference): {', '.join(moved)}.</p>")
    return "".join(parts) or ("<p>Not measured on another hospital's or period's data (Predict: 'Measure the run on these "
                              "patients'; or <code>python -m core evaluate</code>).</p>")


def _subgroups_section(run) -> str:
    """The subgroups of the run's test patients kept with it (``analyses/subgroups.json``, the Compare page)."""
    d = _attached_json(run, "subgroups.json")
    rows = d.get("rows") if isinstance(d, dict) and isinstance(d.get("rows"), list) else []
    out = [[r.get("model"), r.get("attribute"), r.get("group"), _e(r.get("n")), _e(r.get("n_positive")),
            _f(r.get("auroc")), f"[{_f(r.get('auroc_low'))}, {_f(r.get('auroc_high'))}]",
            _f(r.get("observed_expected"), 2), "small" if r.get("small") else ""] for r in rows if isinstance(r, dict)]
    if not out:
        return "<p>Not measured (Compare page: Subgroups).</p>"
    return ("<p>Test patients by static attribute; intervals from a bootstrap over patients within each group.</p>"
            + _table(["model", "attribute", "group", "patients", "positive", "AUROC", "95% CI", "observed / expected",
                      ""], out, num_cols={3, 4, 5, 7}))


def _cv_section(run) -> str:
    cv = _attached_json(run, "cv.json")
    if not isinstance(cv, dict):
        cv = _read_json(run.folder / "cv.json")
    if not isinstance(cv, dict) or not isinstance(cv.get("models"), dict):
        return "<p>Not run (Compare page: Cross-validation; or <code>train --cv K</code>).</p>"
    rows = [[name, _f(m.get("auroc_mean")), _f(m.get("auroc_std")), _f(m.get("auprc_mean")), _f(m.get("auprc_std"))]
            for name, m in cv["models"].items() if isinstance(m, dict)]
    repeats = cv.get("repeats", 1)
    times = f" x {_e(repeats)} repeats" if isinstance(repeats, int) and repeats > 1 else ""
    verdict = cv.get("order_verdict")
    said = (f"<p><b>Does time order help here?</b> {_e(verdict['sentence'])}</p>"
            if isinstance(verdict, dict) and isinstance(verdict.get("sentence"), str) else "")
    return (f"<p>{_e(cv.get('n_folds'))}-fold{times} cross-validation on all labelled patients "
            f"({_e(cv.get('preset'))} preset, seed {_e(cv.get('seed'))}):</p>"
            + _table(["model", "AUROC mean", "AUROC sd", "AUPRC mean", "AUPRC sd"], rows, num_cols={1, 2, 3, 4}) + said)


def _importance_rows(importance, top: int = 10) -> list:
    """The ``top`` variables by mean |attribution| (numbers only; anything else in the file is skipped)."""
    pairs = []
    for k, v in (importance or {}).items():
        try:
            v = float(v)
        except (TypeError, ValueError):
            continue
        if np.isfinite(v):
            pairs.append((str(k), v))
    pairs.sort(key=lambda kv: -kv[1])
    return [[k, f"{v:.4g}"] for k, v in pairs[:top]]


def _explain_section(run) -> str:
    """The explanations attached to the run (``analyses/explain-*.json``): the top 10 variables of each."""
    names = [n for n in list_attached(run.folder) if n.startswith("explain-") and n.endswith(".json")]
    if not names:
        return ("<p><b>Not computed.</b> No explanation is attached to this run: compute them on the Explain page or "
                f"with <code>python -m core explain {_e(run.name)} DATA --model NAME</code>, then build the report "
                "again.</p>")
    parts = ["<p>Mean absolute attribution per variable over the explained patients (larger: the variable moves "
             "the model's risk more), the 10 largest per model; computed after training and kept with the run.</p>"]
    for n in names:
        d = _attached_json(run, n)
        if not isinstance(d, dict) or not isinstance(d.get("importance"), dict):
            parts.append(f"<p>{_e(n)} could not be read as an explanation (it needs model, method and importance).</p>")
            continue
        label = d.get("label") or d.get("model") or n
        hour = f", at hour {_f(d['hour'], 1)}" if isinstance(d.get("hour"), (int, float)) else ""
        parts.append(f"<h3>{_e(label)}</h3><p class=\"note\">{_e(d.get('method', ''))}, over "
                     f"{_e(d.get('n_explained', d.get('n_patients', '?')))} test patients{_e(hour)} "
                     f"({_e(ANALYSES)}/{_e(n)}).</p>"
                     + _table(["variable", "mean |attribution|"], _importance_rows(d["importance"]), num_cols={1}))
    return "".join(parts)


def build_report(run, *, timeorder: str | Path | None = None, n_bootstrap: int = 200) -> str:
    """The report of a reopened run (:func:`core.runs.store.load_run`) as one self-contained HTML page.

    Parameters
    ----------
    run : core.runs.store.Run
    timeorder : path, optional
        A ``timeorder.json`` to include (refused with a CoreError naming it when it is not one:
        :func:`read_given_timeorder`); default: the run's own, else one of the same data in or next to the run
        folder (:func:`find_timeorder`), else the section says "not computed".
    n_bootstrap : int
        Resamples of the decision curves' band (patients; 0 = no band).

    Returns
    -------
    str
        The HTML text (about 5 MB, most of it plotly.js).
    """
    results, comparisons = run.evaluations()
    cfg = run.config
    online = run.online
    name = run.folder.name
    sections = []

    # -- data
    b = run.builder
    variables = list(getattr(b, "variables_", []))
    static = list(getattr(b, "static_columns_", []))
    feat = cfg.get("features", {})
    horizon = (f"every hour of each stay up to {_f(feat.get('window_hours'), 0)} h is predicted from the data up to "
               "and including it (online task; a row is a patient-hour)" if online else
               f"one prediction per stay from its first {_f(feat.get('window_hours'), 0)} h (stay task)")
    sections.append(("data", "Data", "".join([
        _table(["item", "value"], [
            ["target (outcome)", cfg.get("target", "")], ["task", horizon],
            ["time-series variables", f"{len(variables)}: " + ", ".join(map(str, variables))],
            ["static attributes", f"{len(static)}: " + ", ".join(map(str, static)) if static else "none"],
            ["data fingerprint", cfg.get("fingerprint", "")],
            ["hour bin", f"{_f(feat.get('bin_hours'), 2)} h"]]),
        _validation_section(run),
        "<p class=\"note\">Missing values: the recurrent models see an observation mask and the hours since the "
        "last observation; the classical models see counts and hours since last seen, with the remaining gaps "
        "imputed from training patients only.</p>"])))

    # -- split
    n = cfg.get("split", {})
    sections.append(("split", "Split", "".join([
        f"<p>Patients, not rows, are split (stratified, seed {_e(n.get('random_state', cfg.get('random_state')))}): "
        f"validation {_e(n.get('validation_size'))}, test {_e(n.get('test_size'))} of the patients. Features are "
        "fitted on training patients, thresholds and the reference model chosen on validation patients, metrics "
        "computed on test patients only.</p>",
        _table(["split", "patients", "rows / events", "prevalence", "note"], _prevalence_rows(run, online),
               num_cols={1})])))

    # -- models and metrics
    unit = "test patient-hours (CIs from a bootstrap over patients)" if online else "test patients"
    ref = cfg.get("reference")
    ref_label = results[ref].label if ref in results else ref
    sections.append(("metrics", "Models and metrics", "".join([
        f"<p>Every model's metrics on the {unit}, with 95% bootstrap intervals "
        f"({_e(cfg.get('evaluation', {}).get('n_bootstrap'))} resamples); the threshold of each model was chosen on "
        f"validation patients ({_e(cfg.get('evaluation', {}).get('threshold_rule'))} rule). Preset "
        f"{_e(cfg.get('preset'))}, seed {_e(cfg.get('random_state'))}"
        + (", models refitted on training + validation patients for prediction (metrics are those of the models "
           "fitted on training patients)" if run.refitted or cfg.get("refit") else "") + ".</p>",
        _metrics_table(run, results, online),
        _figure(plots.leaderboard_figure(results)) if results else ""])))

    # -- paired tests
    if comparisons:
        kind = "paired bootstrap over patients" if online else "DeLong's test, paired bootstrap interval"
        holm = (f"; verdicts at 5% after Holm's adjustment for the {len(comparisons)} comparisons"
                if len(comparisons) > 1 else "")
        body = (f"<p>Each model against the best classical model on validation ({_e(ref_label)}), {kind}{holm}:</p><ul>"
                + "".join(f"<li>{_e(c.sentence)}</li>" for c in comparisons) + "</ul>")
    else:
        body = "<p>No paired test: the run has a single model.</p>"
    sections.append(("tests", "Paired tests", body))

    # -- curves
    curves = curves_from_results(results, n_bootstrap=n_bootstrap, random_state=int(cfg.get("random_state", 0))) \
        if results else None
    parts = [_figure(plots.roc_figure(results)), _figure(plots.pr_figure(results)),
             _figure(plots.calibration_figure(results))] if results else ["<p>No test predictions saved.</p>"]
    sections.append(("curves", "ROC, precision-recall and calibration", "".join(parts)))
    if curves is not None:
        useful = []
        for m in curves.net_benefit:
            r = curves.useful_range(m)
            useful.append([curves.labels.get(m, m), "never" if r is None else f"{r[0]:g} to {r[1]:g}"])
        dparts = [f"<p>{_e(HOW_TO_READ)}</p>",
                  f"<p class=\"note\">Rows: test {_e(curves.unit)}s (n = {curves.n_rows:,}, prevalence "
                  f"{curves.prevalence:.3f}); band: {n_bootstrap} bootstrap resamples over patients.</p>"
                  if n_bootstrap else "",
                  _figure(plots.decision_curve_figure(curves)),
                  _table(["model", f"thresholds where it beats treat-all and treat-none "
                                   f"({curves.thresholds.min():g}-{curves.thresholds.max():g})"], useful)]
        sections.append(("decision", "Decision curves", "".join(dparts)))

    # -- time order, CV, explanations
    sections.append(("timeorder", "Time order", _timeorder_section(run, timeorder)))
    sections.append(("cv", "Cross-validation", _cv_section(run)))
    sections.append(("subgroups", "Subgroups", _subgroups_section(run)))
    sections.append(("external", "External validation", _external_section(run)))
    sections.append(("explain", "Explanations", _explain_section(run)))

    # -- reproducibility
    manifest = run.folder / "manifest.json"
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else ""
    vers = [[k, v] for k, v in (run.versions or {}).items()]
    conf_rows = [[k, json.dumps(cfg.get(k), sort_keys=True)] for k in ("features", "split", "evaluation")]
    sections.append(("reproducibility", "Reproducibility", "".join([
        _table(["item", "value"], [["run", run.name], ["created", cfg.get("created", "")],
                                   ["models", ", ".join(map(str, cfg.get("models", [])))],
                                   ["request key (same data, settings, seed, code)", cfg.get("request", "")],
                                   ["data fingerprint", cfg.get("fingerprint", "")],
                                   ["SHA-256 of manifest.json (hashes of every file of the run)", digest]]),
        "<p>Library versions:</p>", _table(["library", "version"], vers),
        "<p>Configuration:</p>", _table(["setting", "value"], conf_rows),
        "<p class=\"note\">New patients are scored with <code>python -m core predict RUN DATA --out pred.csv</code>; "
        "the models are in the run folder (scikit-learn models in skops format, torch models as state_dicts).</p>"])))

    # -- TRIPOD+AI
    rows = [[item, topic, where if where else _NOT_ANSWERED] for item, topic, where in TRIPOD_AI_ITEMS]
    sections.append(("tripod", "TRIPOD+AI checklist",
                     "<p>TRIPOD+AI (Collins GS et al., BMJ 2024;385:e078378): where this report answers each item. "
                     "Most items concern the study, not the computation, and only the author can answer them.</p>"
                     + _table(["item", "topic", "answered in this report"], rows)))

    nav = "<nav><ol>" + "".join(f'<li><a href="#{k}">{_e(t)}</a></li>' for k, t, _ in sections) + "</ol></nav>"
    body = "".join(f'<section id="{k}"><h2>{_e(t)}</h2>{b}</section>' for k, t, b in sections)
    title = f"Chronoscope run report: {name}"
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style>"
            f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>"
            f"<h1>{_e(title)}</h1><p class=\"note\">Target {_e(cfg.get('target', ''))}; "
            f"{len(cfg.get('models', []))} model(s); created {_e(cfg.get('created', ''))}. For research and audit, "
            "not diagnosis.</p>" + nav + body + "</body></html>")


def write_report(run_dir: str | Path, out: str | Path, *, timeorder: str | Path | None = None) -> Path:
    """Reopen the run ``run_dir`` (all its checks: :func:`core.runs.store.load_run`) and write its report to ``out``.

    Raises
    ------
    RunError
        The run is missing, incomplete or was changed after saving.
    CoreError
        ``out`` is an existing folder or cannot be written; ``timeorder`` does not exist.
    """
    from core.runs.export import check_out_file
    from core.runs.store import load_run

    path = check_out_file(out, example="report.html")
    if timeorder is not None:
        read_given_timeorder(timeorder)             # before the run is opened: a bad file is refused at once
    text = build_report(load_run(run_dir), timeorder=timeorder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise CoreError(f"Cannot write {path} ({err.strerror or err}). Pass a file path in a folder you can write "
                        "to, e.g. --out results/report.html.") from None
    return path
