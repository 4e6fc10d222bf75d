"""Render helpers shared by pages (no computation)."""
from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from core.data.mapping import HOW
from core.data.validation import Finding, ValidationReport

__all__ = ["render_report", "render_finding", "no_cohort_notice", "require_cohort", "load_with_status", "gui_text", "gui_words", "plain",
           "show_error", "mapping_editor"]

#: command-line options named in core's messages -> the control that does the same on the pages.
_CONTROLS = {
    "--labels": "the Labels upload", "--target": "the target box", "--task": "the Task shape choice",
    "--horizon-hours": "the Horizon box", "--patient-col": "the patient box", "--time-col": "the time box",
    "--variable-col": "the variable box", "--value-col": "the value box", "--layout": "the layout box",
    "--time-format": "the time format box", "--sentinel": "the 'unknown' codes box",
    "--label-patient-col": "the patient column of the labels file", "--keep-implausible":
    "Keep implausible values", "--static": "the static attributes setting", "--max-time-hours":
    "the maximum time setting", "--refit": "Refit for prediction", "--allow-missing": "Score anyway without them", "--backend": "the backend (Jobs page)",
    "--address": "the Ray address (Jobs page)", "--models": "the Models box", "--preset": "the Preset box",
    "--cv": "cross-validation (command line only)", "--group-col": "the Grouping column box", "--map": "the variable mapping form", "--patients": "the patient box", "--out": "the output",
}
_FLAG = re.compile(r"--[a-z][a-z-]*")
_PATH = re.compile(r"(?<![\w.~])/(?:[\w.\-]+/)+([\w.\-]+)")


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$=^&\"'])")


def plain(text: object) -> str:
    """``text`` as literal text in any Streamlit element that renders Markdown (``st.markdown``, ``st.error``,
    ``st.subheader``, captions, metric and widget labels): every ASCII punctuation mark that Markdown or
    Streamlit's directives (``:red[...]``, ``:material/...:``) could read is backslash-escaped, and line
    breaks become spaces, so a file, column, variable or patient named ``![x](http://host/a.png)`` is shown
    as those characters: never an image, a link, a heading or HTML. Bare addresses get a zero-width space
    (``http:\u200b//``), so they are not turned into links either.

    The one helper for user-supplied text on pages (plotly figures escape with ``core.plots``' own).

    Examples
    --------
    >>> print(plain("![x](h/a.png)"))
    \\!\\[x\\]\\(h/a\\.png\\)
    """
    flat = " ".join(str(text).splitlines())
    # GitHub-flavoured Markdown also turns bare addresses into links (http://..., www..., a@b.c), escaped or
    # not: a zero-width space after the scheme, "www" and "@" keeps them text (invisible on the page).
    flat = flat.replace("://", ":\u200b//").replace("www.", "www\u200b.").replace("@", "@\u200b")
    return _MARKDOWN.sub(r"\\\1", flat)


def gui_words(text: object) -> str:
    """A core message as the pages say it, as plain text (for tables and ``st.text``): controls instead of
    command-line options, and file names instead of server paths (``/srv/app/runs/x`` -> ``x``)."""
    out = _FLAG.sub(lambda m: _CONTROLS.get(m.group(0), m.group(0).lstrip("-").replace("-", " ")), str(text))
    return _PATH.sub(lambda m: m.group(1), out)


def gui_text(text: object) -> str:
    """:func:`gui_words`, escaped for a Markdown element (:func:`plain`): what every message shown with
    ``st.error`` / ``st.warning`` / ``st.info`` / ``st.markdown`` goes through."""
    return plain(gui_words(text))


def show_error(err: object) -> None:
    """``st.error`` of a core error, in the pages' words (:func:`gui_text`)."""
    st.error(gui_text(err))


def render_finding(f: Finding) -> None:
    body = f"**{gui_text(f.message)}**" + (f" ({f.count:,} {plain(f.unit)})" if f.count else "")
    if f.examples:
        body += "  \n" + "Examples: " + "; ".join(plain(e) for e in f.examples)
    if f.fix:
        body += "  \n" + f"How to fix: {gui_text(f.fix)}"
    {"error": st.error, "warning": st.warning, "info": st.info}[f.level](body)


def render_report(report: ValidationReport) -> None:
    """Summary metrics, then errors, warnings, exclusions and notes, for a person."""
    s = report.summary
    if s:
        cols = st.columns(5)
        cols[0].metric("Patients", f"{s.get('patients', 0):,}")
        cols[1].metric("Rows used", f"{report.rows_used:,}", help=f"{report.rows_read:,} rows read")
        cols[2].metric("Variables", f"{s.get('time-series variables', 0)} + {s.get('static attributes', 0)} static")
        cols[3].metric("Labelled", f"{s.get('labelled patients', 0):,}" if "labelled patients" in s else "none")
        if "positive hours" in s:     # online: the models predict hours, so the hourly rate leads
            cols[4].metric("Positive hours", str(s["positive hours"]).split("(")[-1].rstrip(")"),
                           help=f"{s['positive hours']} of {s.get('labelled hours', 0):,} labelled hours; "
                                f"{s.get('prevalence', 'n/a')} of stays have a positive hour")
        else:
            cols[4].metric("Prevalence", str(s.get("prevalence", "n/a")),
                           help=f"{s.get('positives', 0):,} positives for target {plain(s.get('target'))}")
    excluded = sum(report.rows_excluded.values())
    if report.rows_read:                # the counts line first: what was read, used and left out, by reason
        reasons = sorted(report.rows_excluded.items(), key=lambda kv: -kv[1])
        st.caption(f"{report.rows_used:,} of {report.rows_read:,} rows used" + (
            f"; {excluded:,} excluded ({', '.join(f'{plain(k)}: {v:,}' for k, v in reasons[:4])}"
            + (f" and {len(reasons) - 4} more reasons" if len(reasons) > 4 else "") + ")" if excluded else "."))
    for f in report.errors:             # blocking: shown open, on top
        render_finding(f)
    if report.ok:
        st.success("The data can be used for training." if "labelled patients" in s else
                   "The data can be explored; add labels to train models.")
    by_kind: dict[str, list] = {}
    for f in report.warnings:           # one expander per kind of warning, not a wall of yellow boxes
        by_kind.setdefault(f.code, []).append(f)
    for kind, found in by_kind.items():
        first = gui_words(found[0].message)
        title = first if len(first) <= 110 else first[:107].rstrip() + "..."
        more = f" (+{len(found) - 1} more of this kind)" if len(found) > 1 else ""
        with st.expander(f":warning: {plain(title)}{more}", expanded=len(by_kind) == 1):
            for f in found:
                render_finding(f)
    if excluded:
        with st.expander(f"{excluded:,} of {report.rows_read:,} rows excluded: by reason"):
            st.dataframe(pd.DataFrame({"reason": list(report.rows_excluded),
                                       "rows": list(report.rows_excluded.values())}), hide_index=True)
    notes = [f for f in report.findings if f.level == "info"]
    if notes:
        with st.expander(f"How the data were read ({len(notes)} notes)"):
            for f in notes:
                st.markdown(f"- {gui_text(f.message)}" + (f" ({f.count:,} {plain(f.unit)})" if f.count else ""))
            if "columns" in s:
                st.markdown(f"- Column mapping: {plain(s['columns'])}; format: {plain(s.get('format'))}")


def no_cohort_notice() -> None:
    st.warning("No usable cohort is loaded. Go to the **Data** page to load the demo or fix your upload.")
    st.page_link("app/pages/data.py", label="Open the Data page", icon=":material/upload_file:")


def load_with_status(source):
    """``cache.load_source(source)``; a large upload is loaded inside a status box that says what is being
    done and about how long it takes, then how long it took (once per session and source)."""
    import time
    from app import cache, state
    note = cache.load_estimate(source)
    if note is None or st.session_state.get(state.LOADED_SOURCE) == source.digests:
        return cache.load_source(source)
    with st.status(note, expanded=False) as box:
        start = time.monotonic()
        cohort, report = cache.load_source(source)
        took = time.monotonic() - start
        if cohort is None:
            box.update(label=f"Could not build a cohort ({took:,.0f} s): see the report below.", state="error")
        else:
            box.update(label=f"Read and checked {report.rows_read:,} rows of {cohort.n_patients:,} patients in "
                             f"{took:,.0f} s.", state="complete")
    st.session_state[state.LOADED_SOURCE] = source.digests
    return cohort, report


def require_cohort():
    """The current cohort, or (when none could be built) a notice pointing to the Data page and ``st.stop()``."""
    from app.state import get_source
    cohort, _ = load_with_status(get_source())
    if cohort is None:
        no_cohort_notice()
        st.stop()
    return cohort


def mapping_editor(key: str, mapping, data_vars, run_vars, pairs: dict) -> dict | None:
    """The variables matched with a run's (:class:`core.data.mapping.VariableMapping`) and a form for the user's own
    pairs. Returns the new pairs ``{name in the data: name in the run}`` when the form is applied, else ``None``."""
    if mapping.renamed:
        st.dataframe(pd.DataFrame([(new, old, HOW[how]) for new, old, how in mapping.renamed],
                                  columns=["In these data", "In the run", "Matched by"]), hide_index=True,
                     key=f"{key}.pairs")
    for line in mapping.lines()[len(mapping.renamed):]:
        st.caption(plain(line))
    with st.form(f"{key}.form", border=False):
        table = pd.DataFrame(list(pairs.items()), columns=["In these data", "In the run"], dtype=object)
        edited = st.data_editor(table, num_rows="dynamic", hide_index=True, key=f"{key}.editor", column_config={
            "In these data": st.column_config.SelectboxColumn(options=sorted(map(str, data_vars)), required=True),
            "In the run": st.column_config.SelectboxColumn(options=sorted(map(str, run_vars)), required=True)})
        applied = st.form_submit_button("Apply these pairs", help="Pair a variable of these data with one of the "
                                        "run's when the names differ and no synonym matched them")
    if not applied:
        return None
    return {str(a): str(b) for a, b in edited.itertuples(index=False)
            if isinstance(a, str) and isinstance(b, str) and a and b}
