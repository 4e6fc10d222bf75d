"""Plotly figures: a result or table in, a ``go.Figure`` out. No computation beyond layout.

Data-exploration figures (Cohort and Patient-timeline pages) come first; model-comparison and
explanation figures follow in their own sections.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["MODEL_COLORS", "coverage_figure", "missingness_figure", "sampling_figure", "sequence_length_figure",
           "distribution_figure", "timeline_figure", "OUTCOME_COLORS",
           "roc_figure", "pr_figure", "calibration_figure", "confusion_figure", "leaderboard_figure",
           "ablation_figure", "horizon_figure", "timeorder_forest_figure", "gate_heatmap_figure", "gate_lines_figure",
           "importance_figure", "agreement_figure", "time_importance_figure", "patient_attribution_figure",
           "waterfall_figure", "tiers_figure", "decision_curve_figure", "risk_distribution_figure"]

OUTCOME_COLORS = {"positive": "#d62728", "negative": "#1f77b4", "unlabelled": "#7f7f7f"}
_LAYOUT = dict(template="plotly_white", margin=dict(l=10, r=10, t=50, b=10))


def coverage_figure(coverage: pd.DataFrame) -> go.Figure:
    """Horizontal bars: share of patients with at least one value, per variable, each variable once
    (``core.data.explore.coverage_by_variable``: time series and static values of one variable count once),
    in the order given, the first on top."""
    cat = coverage.iloc[::-1].assign(label=lambda d: [_with_unit(v) for v in d["variable"]])   # first row on top
    fig = px.bar(cat, x="coverage", y="label", color="kind", orientation="h",
                 hover_data={"n_patients": ":,", "coverage": ":.1%", "label": False},
                 labels={"coverage": "patients with >= 1 value", "label": "", "kind": ""},
                 title="Variable coverage", color_discrete_map={"time series": "#2c7fb8", "static": "#9e9ac8",
                                                                "both": "#41ab5d"},
                 category_orders={"label": list(cat["label"])})
    fig.update_yaxes(tickmode="array", tickvals=list(cat["label"]), ticktext=list(cat["label"]))
    fig.update_layout(height=max(300, 18 * len(cat) + 100), xaxis_tickformat=".0%", xaxis_range=[0, 1], **_LAYOUT)
    return fig


def missingness_figure(table: pd.DataFrame) -> go.Figure:
    """Heatmap: fraction of patients with an observation, variable x hour of stay."""
    fig = go.Figure(go.Heatmap(z=table.to_numpy(), x=list(table.columns), y=[_with_unit(v) for v in table.index],
                               colorscale="Blues", zmin=0, zmax=1, colorbar=dict(title="observed", tickformat=".0%"),
                               hovertemplate="%{y}, hour %{x}: %{z:.1%} of patients<extra></extra>"))
    fig.update_layout(title="Missingness: share of patients observed per hour", xaxis_title="hour of stay",
                      height=max(320, 16 * len(table) + 120), **_LAYOUT)
    fig.update_yaxes(autorange="reversed", tickmode="array", tickvals=[_with_unit(v) for v in table.index],
                     ticktext=[_with_unit(v) for v in table.index])
    return fig


def sampling_figure(intervals: pd.DataFrame) -> go.Figure:
    """Median (bar) and 90th percentile (marker) hours between observations, per variable, every variable
    labelled, in the order given (first on top). Horizontal, so 40 variable names never overlap."""
    fig = go.Figure()
    names = [_text(v) for v in intervals["variable"]]
    fig.add_bar(y=names, x=intervals["median_hours"], name="median", orientation="h")
    fig.add_scatter(y=names, x=intervals["p90_hours"], mode="markers", name="90th percentile",
                    marker=dict(symbol="line-ns-open", size=14, line=dict(width=3)))
    ticks = [0.25, 0.5, 1, 2, 4, 8, 12, 24, 48]
    fig.update_layout(title="Sampling frequency: hours between observations", xaxis_title="hours (log scale)",
                      xaxis=dict(type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks]),
                      height=max(320, 20 * len(names) + 140),
                      yaxis=dict(tickmode="array", tickvals=names, ticktext=names, autorange="reversed",
                                 tickfont=dict(size=11)), **_LAYOUT)
    return fig


def sequence_length_figure(lengths: pd.DataFrame, column: str = "n_events") -> go.Figure:
    """Histogram of per-patient sequence length, split by outcome when labels exist."""
    color = "outcome" if "outcome" in lengths else None
    labels = {"n_events": "observations per patient", "hours_with_data": "hours with at least one observation",
              "last_hour": "time of last observation (h)"}
    fig = px.histogram(lengths, x=column, color=color, barmode="overlay", nbins=60, opacity=0.65,
                       color_discrete_map=OUTCOME_COLORS, labels=labels, title="Sequence lengths")
    fig.update_layout(height=360, **_LAYOUT)
    return fig


def distribution_figure(values: pd.DataFrame, variable: str, stat: str) -> go.Figure:
    """Per-patient values of one variable, split by outcome (violin with box), with the unit; on a log
    scale when the values are positive and strongly right-skewed (the 90th percentile over 10x the median)."""
    v = pd.to_numeric(values["value"], errors="coerce").dropna() if len(values) else pd.Series(dtype=float)
    log = bool(len(v) > 10 and (v > 0).all() and v.quantile(0.9) > 10 * v.median())
    fig = px.violin(values, x="outcome", y="value", color="outcome", box=True, points=False,
                    color_discrete_map=OUTCOME_COLORS, log_y=log,
                    category_orders={"outcome": ["negative", "positive", "unlabelled"]},
                    labels={"value": f"{_with_unit(variable)}, {stat} per patient" + (" (log scale)" if log else ""),
                            "outcome": ""},
                    title=f"{_text(variable)}: distribution by outcome")
    fig.update_layout(height=380, showlegend=False, **_LAYOUT)
    return fig


def _text(name: object) -> str:
    """A user-supplied name as plain text in a plotly label (no HTML tags, no links)."""
    import html
    return html.escape(str(name), quote=True)


def _unit_suffix(variable: object) -> str:
    from core.data.plausibility import unit_of
    unit = unit_of(variable)
    return f" {unit}" if unit else ""


def _normal(variable: object):
    from core.data.plausibility import lookup
    r = lookup(variable)
    return None if r is None else r.normal


def _with_unit(variable: object) -> str:
    """``"HR (bpm)"`` for a known variable, the escaped name otherwise."""
    from core.data.plausibility import unit_of
    unit = unit_of(variable)
    return f"{_text(variable)} ({unit})" if unit else _text(variable)


def timeline_figure(events: pd.DataFrame, variables: list[str], title: str = "",
                    risk: pd.DataFrame | None = None, shade: list | None = None,
                    thresholds: dict | None = None) -> go.Figure:
    """Small multiples: one row per variable, markers at the actual observations, a thin line between;
    units in the panel titles and a green band at the usual reference interval of known variables;
    values outside the plausible range (kept on request) marked with a red cross.

    Parameters
    ----------
    events : DataFrame
        One patient's events (``time_hours, variable, value``).
    variables : list of str
        Variables to show, one panel each, in this order.
    risk : DataFrame, optional
        Columns ``time_hours`` plus one column per model: risk after each hour, drawn in a top panel.
    shade : list of (start, end) hours, optional
        Spans shaded on every panel (the online task's positive label window).
    thresholds : dict of str to float, optional
        Model column -> decision threshold, drawn as a dotted line in the risk panel.
    """
    from core.data.plausibility import implausible_mask, lookup
    n_risk = 1 if risk is not None and len(risk) else 0
    rows = max(len(variables), 1) + n_risk
    titles = (["risk (per model)"] if n_risk else []) + [_with_unit(v) for v in variables]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=min(0.04, 0.3 / rows),
                        subplot_titles=titles)
    if n_risk:
        for col in risk.columns.drop("time_hours"):
            fig.add_scatter(x=risk["time_hours"], y=risk[col], mode="lines", name=_model_label(col), row=1, col=1,
                            line=dict(color=MODEL_COLORS.get(str(col))),
                            hovertemplate=f"{_model_label(col)}: risk %{{y:.1%}} at %{{x:.1f}} h<extra></extra>")
        fig.update_yaxes(range=[0, 1], tickformat=".0%", row=1, col=1)
    for i, var in enumerate(variables, start=1 + n_risk):
        sub = events[events["variable"].astype(str) == var].sort_values("time_hours")
        fig.add_scatter(x=sub["time_hours"], y=sub["value"], mode="lines+markers", name=_text(var), showlegend=False,
                        line=dict(width=1, dash="dot", color="#9ecae1"),
                        marker=dict(size=7, color="#08519c"),
                        hovertemplate=f"{_text(var)}: %{{y:.4g}}{_unit_suffix(var)} at %{{x:.2f}} h<extra></extra>",
                        row=i, col=1)
        bad = implausible_mask(sub["variable"].astype(str).to_numpy(), sub["value"].to_numpy())
        if bad.any():                                 # kept on request: marked, never passed off as normal
            r = lookup(var)
            fig.add_scatter(x=sub["time_hours"][bad], y=sub["value"][bad], mode="markers", showlegend=False,
                            name="outside the plausible range",
                            marker=dict(size=11, symbol="x", color="#d62728"),
                            hovertemplate=f"{_text(var)}: %{{y:.4g}}{_unit_suffix(var)} at %{{x:.2f}} h: OUTSIDE the "
                                          f"plausible range {r.low:g} to {r.high:g} (kept as asked)<extra></extra>",
                            row=i, col=1)
        normal = _normal(var)
        if normal is not None and not sub.empty:      # the usual reference interval, to read the values against
            fig.add_hrect(y0=normal[0], y1=normal[1], fillcolor="#41ab5d", opacity=0.12, line_width=0, row=i, col=1)
        if sub.empty:
            fig.add_annotation(text="no observations", xref="x domain", yref="y domain", x=0.5, y=0.5,
                               showarrow=False, row=i, col=1)
    for lo, hi in shade or []:
        fig.add_vrect(x0=lo, x1=hi, fillcolor="#fdae6b", opacity=0.25, line_width=0, row="all", col=1)
    if n_risk and thresholds:
        for col, thr in thresholds.items():
            fig.add_hline(y=float(thr), line=dict(dash="dot", width=1, color=MODEL_COLORS.get(col, "#636363")),
                          row=1, col=1)
    fig.update_xaxes(title_text="hours since admission", row=rows, col=1)
    fig.update_layout(height=130 * rows + 80, title=_text(title), **_LAYOUT)
    return fig


# -- model comparison (Compare page) ------------------------------------------------------------
#: one colour per model, the same on every page and chart.
MODEL_COLORS = {"lr": "#1f77b4", "svm": "#9467bd", "rf": "#2ca02c", "gbm": "#ff7f0e", "rnn": "#8c564b",
                 "lstm": "#e377c2", "gru": "#d62728", "grud": "#17becf"}


def _model_label(name: object) -> str:
    """A model's name in words (``gru`` -> ``GRU``); other names as escaped text."""
    from core.models import registry
    try:
        return registry.get(str(name)).label
    except ValueError:
        return _text(name)


def _results(results) -> list:
    return list(results.values()) if isinstance(results, dict) else list(results)


def _name(ev) -> str:
    auc = ev.metrics.get("auroc", float("nan"))
    return f"{ev.label or ev.model_name} ({auc:.3f})"


def roc_figure(results) -> go.Figure:
    """ROC curves of several :class:`~core.evaluation.metrics.EvaluationResult` overlaid (legend: AUROC)."""
    fig = go.Figure()
    for ev in _results(results):
        fpr, tpr = ev.roc_curve()
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=_name(ev),
                                 line=dict(color=MODEL_COLORS.get(ev.model_name))))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"),
                             name="chance", hoverinfo="skip"))
    fig.update_layout(title="ROC curves (test patients)", xaxis_title="1 - specificity",
                      yaxis_title="sensitivity", height=420, **_LAYOUT)
    return fig


def pr_figure(results) -> go.Figure:
    """Precision-recall curves overlaid; the dotted line is the prevalence (a useless model)."""
    fig = go.Figure()
    res = _results(results)
    for ev in res:
        rec, prec = ev.pr_curve()
        fig.add_trace(go.Scatter(x=rec, y=prec, mode="lines", name=f"{ev.label} ({ev.metrics['auprc']:.3f})",
                                 line=dict(color=MODEL_COLORS.get(ev.model_name), shape="hv")))
    if res:
        prev = float(res[0].y_true.mean())
        fig.add_trace(go.Scatter(x=[0, 1], y=[prev, prev], mode="lines", line=dict(dash="dot", color="grey"),
                                 name=f"prevalence ({prev:.3f})", hoverinfo="skip"))
    fig.update_layout(title="Precision-recall curves (test patients)", xaxis_title="sensitivity (recall)",
                      yaxis_title="PPV (precision)", height=420, **_LAYOUT)
    return fig


def calibration_figure(results, n_bins: int = 10) -> go.Figure:
    """Observed event rate against mean predicted risk per risk decile; the diagonal is perfect calibration."""
    fig = go.Figure()
    hi = 0.0
    for ev in _results(results):
        pred, obs, cnt = ev.calibration_curve(n_bins)
        hi = max(hi, float(pred.max(initial=0)), float(obs.max(initial=0)))
        fig.add_trace(go.Scatter(x=pred, y=obs, mode="lines+markers", name=f"{ev.label} (Brier "
                                 f"{ev.metrics['brier']:.3f})", customdata=cnt,
                                 hovertemplate="predicted %{x:.2f}, observed %{y:.2f} (%{customdata} patients)",
                                 line=dict(color=MODEL_COLORS.get(ev.model_name))))
    hi = min(1.0, hi * 1.05 + 0.01)
    fig.add_trace(go.Scatter(x=[0, hi], y=[0, hi], mode="lines", line=dict(dash="dot", color="grey"),
                             name="perfect", hoverinfo="skip"))
    fig.update_layout(title="Calibration (test patients, deciles of risk)", xaxis_title="mean predicted risk",
                      yaxis_title="observed rate", height=420, **_LAYOUT)
    return fig


def confusion_figure(result, threshold: float | None = None) -> go.Figure:
    """2x2 confusion matrix of one model at ``threshold`` (default: its saved threshold)."""
    cm = result.confusion(threshold)
    labels = [["true negatives", "false positives"], ["false negatives", "true positives"]]
    text = [[f"{labels[i][j]}<br>{cm[i, j]:,}" for j in range(2)] for i in range(2)]
    fig = go.Figure(go.Heatmap(z=cm, x=["predicted 0", "predicted 1"], y=["actual 0", "actual 1"], text=text,
                               texttemplate="%{text}", colorscale="Blues", showscale=False))
    t = result.threshold if threshold is None else threshold
    fig.update_layout(title=f"{result.label}: threshold {t:.3f}", height=320, yaxis_autorange="reversed",
                      **_LAYOUT)
    return fig


def leaderboard_figure(results, metric: str = "auroc") -> go.Figure:
    """Point estimates with 95% bootstrap intervals, one row per model, best on top."""
    res = sorted(_results(results), key=lambda ev: ev.metrics.get(metric, 0))
    x = [ev.metrics[metric] for ev in res]
    lo = [ev.ci.get(metric, (v, v))[0] for ev, v in zip(res, x)]
    hi = [ev.ci.get(metric, (v, v))[1] for ev, v in zip(res, x)]
    fig = go.Figure(go.Scatter(x=x, y=[ev.label for ev in res], mode="markers",
                               marker=dict(size=10, color=[MODEL_COLORS.get(ev.model_name) for ev in res]),
                               error_x=dict(type="data", symmetric=False, array=[h - v for h, v in zip(hi, x)],
                                            arrayminus=[v - low for v, low in zip(x, lo)])))
    fig.update_layout(title=f"Test {metric.upper()} with 95% CI", height=60 + 40 * max(len(res), 1),
                      xaxis_title=metric.upper(), **_LAYOUT)
    return fig


# --------------------------------------------------------------------------------------------
# time order (core.analysis.timeorder) and recurrent internals (core.analysis.gates)
# --------------------------------------------------------------------------------------------
_ARM_COLORS = {"ordered": "#d62728", "shuffled": "#7f7f7f", "shuffled_test": "#bdbdbd"}


def ablation_figure(ablation) -> go.Figure:
    """Bars with 95% CIs: test AUROC of the ablation's three arms (an ``AblationResult``)."""
    arms = [("ordered", "trained + tested<br>on ordered hours", ablation.auroc_ordered),
            ("shuffled", "retrained + tested<br>on shuffled hours", ablation.auroc_shuffled),
            ("shuffled_test", "ordered model tested<br>on shuffled hours", ablation.auroc_shuffled_test)]
    fig = go.Figure()
    for key, name, v in arms:
        lo, hi = ablation.ci[f"auroc_{key}"]
        fig.add_bar(x=[name], y=[v], name=name.replace("<br>", " "), marker_color=_ARM_COLORS[key],
                    error_y=dict(type="data", symmetric=False, array=[hi - v], arrayminus=[v - lo]),
                    text=[f"{v:.3f}"], textposition="inside", insidetextanchor="start",
                    hovertemplate=f"AUROC {v:.3f} [{lo:.3f}, {hi:.3f}]<extra></extra>")
    fig.add_hline(y=0.5, line_dash="dot", line_color="#999", annotation_text="chance")
    lo = min(0.4, min(ablation.ci[f"auroc_{k}"][0] for k, _, _ in arms) - 0.05)
    fig.update_layout(title=f"Order ablation ({ablation.label}): test AUROC with 95% CI", showlegend=False,
                      yaxis=dict(title="AUROC", range=[max(lo, 0.0), 1.0]), height=380, **_LAYOUT)
    return fig


def horizon_figure(horizons: pd.DataFrame, metric: str = "auroc") -> go.Figure:
    """AUROC (or AUPRC) against hours of data available, one line per model with a CI band.

    ``horizons`` is ``TimeOrderResult.horizons`` (columns model, label, kind, hours, <metric>,
    <metric>_low, <metric>_high).
    """
    fig = go.Figure()
    for name, g in horizons.groupby("model", sort=False):
        g = g.sort_values("hours")
        color = MODEL_COLORS.get(name, "#333")
        dash = "solid" if g["kind"].iloc[0] == "sequence" else "dash"
        band = f"rgba({int(color[1:3], 16)},{int(color[3:5], 16)},{int(color[5:7], 16)},0.12)"
        fig.add_scatter(x=list(g["hours"]) + list(g["hours"][::-1]),
                        y=list(g[f"{metric}_high"]) + list(g[f"{metric}_low"][::-1]), fill="toself", mode="lines",
                        fillcolor=band, line=dict(width=0), hoverinfo="skip", showlegend=False, legendgroup=name)
        fig.add_scatter(x=g["hours"], y=g[metric], mode="lines+markers", name=f"{g['label'].iloc[0]}",
                        legendgroup=name, line=dict(color=color, dash=dash),
                        customdata=g[[f"{metric}_low", f"{metric}_high"]].to_numpy(),
                        hovertemplate=f"{g['label'].iloc[0]}, %{{x:g}} h: {metric.upper()} %{{y:.3f}} "
                                      "[%{customdata[0]:.3f}, %{customdata[1]:.3f}]<extra></extra>")
    fig.update_layout(title=f"Early prediction: test {metric.upper()} with only the first k hours "
                            "(solid = sequence, dashed = order-free)",
                      xaxis_title="hours of data available (k)", yaxis_title=metric.upper(), height=420,
                      **_LAYOUT)
    return fig


def timeorder_forest_figure(result) -> go.Figure:
    """Forest plot of the paired differences of a ``TimeOrderResult`` (AUROC, 95% CI, zero line)."""
    a = result.ablation
    rows = [(f"ablation: {a.label} ordered - retrained on shuffled", a.delta, *a.delta_ci),
            (f"ablation: {a.label} ordered - same model on shuffled", a.delta_shuffled_test, *a.delta_shuffled_test_ci)]
    g = result.gap
    if g is not None:
        rows.append((f"gap: {g.sequence_label} - {g.order_free_label}", g.difference, g.ci_low, g.ci_high))
    rows = rows[::-1]
    colors = ["#2ca02c" if lo > 0 else ("#d62728" if hi < 0 else "#7f7f7f") for _, _, lo, hi in rows]
    fig = go.Figure(go.Scatter(x=[r[1] for r in rows], y=[r[0] for r in rows], mode="markers",
                               marker=dict(size=12, color=colors, symbol="diamond"),
                               error_x=dict(type="data", symmetric=False, array=[r[3] - r[1] for r in rows],
                                            arrayminus=[r[1] - r[2] for r in rows]),
                               hovertemplate="%{y}: %{x:+.3f} AUROC<extra></extra>"))
    fig.add_vline(x=0, line_dash="dash", line_color="#555")
    fig.update_layout(title="AUROC differences, 95% paired CI",
                      xaxis_title="AUROC difference (> 0: order helps)", height=160 + 60 * len(rows),
                      **_LAYOUT)
    return fig


def gate_heatmap_figure(values, title: str, hours=None, zmin: float = 0.0, zmax: float = 1.0) -> go.Figure:
    """Heatmap of one patient's activations, hidden unit (rows) x hour (columns).

    ``values`` is ``(n_timesteps, hidden_size)``, e.g. ``GateTrace.gates["update"][patient]``.
    """
    import numpy as np
    v = np.asarray(values)
    x = list(range(1, v.shape[0] + 1)) if hours is None else list(hours)
    fig = go.Figure(go.Heatmap(z=v.T, x=x, y=[f"unit {i}" for i in range(v.shape[1])], zmin=zmin, zmax=zmax,
                               colorscale="RdBu_r" if zmin < 0 else "Viridis",
                               hovertemplate="%{y}, hour %{x}: %{z:.2f}<extra></extra>"))
    fig.update_layout(title=_text(title), xaxis_title="hour", height=max(260, 12 * v.shape[1] + 120), **_LAYOUT)
    return fig


def gate_lines_figure(trace, patient: int = 0, hours=None) -> go.Figure:
    """Mean activation of every gate over hidden units along the timeline, with the model's risk.

    ``trace`` is a ``core.analysis.gates.GateTrace``.
    """
    means = trace.mean_gates(patient)
    T = trace.hidden.shape[1]
    x = list(range(1, T + 1)) if hours is None else list(hours)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.35, 0.65], vertical_spacing=0.08,
                        subplot_titles=["predicted risk after each hour", "mean gate activation"])
    if trace.risk is not None:
        fig.add_scatter(x=x, y=trace.risk[patient], mode="lines+markers", name="risk", line=dict(color="#d62728"),
                        row=1, col=1)
    for name, m in means.items():
        fig.add_scatter(x=x, y=m, mode="lines", name=f"{name} gate" if name not in ("cell", "new") else
                        f"candidate ({name})", row=2, col=1)
    fig.add_scatter(x=x, y=abs(trace.hidden[patient]).mean(axis=1), mode="lines", name="mean |hidden state|",
                    line=dict(dash="dot", color="#333"), row=2, col=1)
    fig.update_yaxes(range=[0, 1], row=1, col=1)
    fig.update_xaxes(title_text="hour", row=2, col=1)
    fig.update_layout(title=f"{trace.cell.upper()} internals along the timeline", height=520, **_LAYOUT)
    return fig


# -- Explanation figures (Explain page) --------------------------------------------------------
_DIVERGING = [[0.0, "#2166ac"], [0.5, "#f7f7f7"], [1.0, "#b2182b"]]


def importance_figure(table: pd.DataFrame, top: int = 15) -> go.Figure:
    """Grouped horizontal bars: normalised mean |attribution| per variable (rows) and model (colours).

    ``table`` is :func:`core.analysis.explain.compare_importance` output (variables x models, each column sums to 1).
    """
    t = table.head(top).iloc[::-1]
    fig = go.Figure()
    for col in t.columns:                          # one colour per model, the same on every page
        label = _model_label(col)
        fig.add_bar(x=t[col], y=[_text(v) for v in t.index], orientation="h", name=label,
                    marker_color=MODEL_COLORS.get(str(col)),
                    hovertemplate=f"{label}: %{{y}} %{{x:.1%}} of total importance<extra></extra>")
    fig.update_layout(barmode="group", title="Variable importance per model (mean |attribution|, share of total)",
                      xaxis_tickformat=".0%", height=max(320, 22 * len(t) * max(1, len(t.columns)) ** 0.5 + 120),
                      **_LAYOUT)
    return fig


def agreement_figure(agreement: pd.DataFrame) -> go.Figure:
    """Heatmap of the Spearman rank correlation of variable importance between models."""
    z = agreement.to_numpy(dtype=float)
    fig = go.Figure(go.Heatmap(z=z, x=[_model_label(c) for c in agreement.columns],
                               y=[_model_label(i) for i in agreement.index], zmin=-1, zmax=1,
                               colorscale=_DIVERGING, colorbar=dict(title="Spearman"),
                               text=[[f"{v:.2f}" if np.isfinite(v) else "n/a" for v in row] for row in z],
                               texttemplate="%{text}",
                               hovertemplate="%{y} vs %{x}: rho = %{z:.2f}<extra></extra>"))
    fig.update_layout(title="Do the models agree on what matters? (rank correlation of importance)",
                      height=120 + 40 * len(agreement), **_LAYOUT)
    fig.update_yaxes(autorange="reversed")
    return fig


def time_importance_figure(result, top: int = 15) -> go.Figure:
    """Heatmap of mean |attribution| per variable x hour for a sequence model's :class:`ExplanationResult`."""
    ti = result.time_importance()
    ti = ti.loc[ti.sum(axis=1).sort_values(ascending=False).index[:top]]
    fig = go.Figure(go.Heatmap(z=ti.to_numpy(), x=list(ti.columns), y=[_text(v) for v in ti.index], colorscale="Viridis",
                               colorbar=dict(title="mean |attr|"),
                               hovertemplate="%{y}, hour %{x}: %{z:.3g}<extra></extra>"))
    fig.update_layout(title=f"{result.label or result.model_name}: when each variable matters "
                            f"(mean |attribution| over {len(result.patient_ids)} patients)",
                      xaxis_title="hour of stay (step start)", height=140 + 20 * len(ti), **_LAYOUT)
    fig.update_yaxes(autorange="reversed")
    return fig


def patient_attribution_figure(events: pd.DataFrame, risk: pd.DataFrame, result, patient_id: str,
                               top: int = 10, n_values: int = 3) -> go.Figure:
    """One patient: risk over time (top), the most influential variables' values, and the
    signed attribution heatmap (variable x hour) of one sequence model, on a shared time axis.

    Parameters
    ----------
    events : DataFrame (``time_hours, variable, value``) of the patient
    risk : DataFrame from :meth:`core.runs.store.Run.risk_table`
        ``time_hours`` + one risk column per model (or only ``time_hours``). The explained model's
        risk is drawn bold; any other model's thin and faded, for comparison.
    result : ExplanationResult of a sequence model that includes ``patient_id``
    """
    one = result.patient(patient_id)
    step = float(np.diff(result.times_hours)[0]) if len(result.times_hours) > 1 else 1.0
    grid = one.pivot_table(index="variable", columns="time_hours", values="attribution", aggfunc="sum",
                           observed=True)
    order = grid.abs().sum(axis=1).sort_values(ascending=False).index
    grid = grid.loc[order[:top]]
    shown = [v for v in order[:n_values] if (events["variable"].astype(str) == v).any()]
    rows = 2 + len(shown)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        row_heights=[0.22] + [0.12] * len(shown) + [0.66 - 0.12 * len(shown) + 0.12],
                        subplot_titles=["risk after each hour"] + [_text(v) for v in shown] +
                                       [f"{result.label or result.model_name}: attribution "
                                        f"({result.output}; red raises risk)"])
    others = [c for c in risk.columns if c != "time_hours" and c != result.model_name]
    explained = [result.model_name] if result.model_name in risk.columns else []
    for col in others + explained:                       # the explained model last: drawn on top
        main = col == result.model_name or not explained
        fig.add_scatter(x=risk["time_hours"], y=risk[col], mode="lines+markers" if main else "lines",
                        name=_text(col), row=1, col=1, opacity=1.0 if main else 0.45,
                        line=dict(width=3 if col == result.model_name else 1.5 if main else 1),
                        hovertemplate=f"{_text(col)}: %{{y:.1%}} after %{{x:.4g}} h<extra></extra>")
    fig.update_yaxes(range=[0, 1], tickformat=".0%", row=1, col=1)
    for i, var in enumerate(shown, start=2):
        sub = events[events["variable"].astype(str) == var].sort_values("time_hours")
        fig.add_scatter(x=sub["time_hours"], y=sub["value"], mode="lines+markers", showlegend=False,
                        line=dict(width=1, dash="dot", color="#9ecae1"), marker=dict(size=6, color="#08519c"),
                        hovertemplate=f"{_text(var)}: %{{y:.4g}}{_unit_suffix(var)} at %{{x:.2f}} h<extra></extra>",
                        row=i, col=1)
    z = grid.to_numpy()
    lim = float(np.nanmax(np.abs(z))) if z.size and np.isfinite(z).any() else 1.0
    fig.add_trace(go.Heatmap(z=z, x=np.asarray(grid.columns, dtype=float) + step / 2, y=[_text(v) for v in grid.index],
                             zmin=-lim, zmax=lim, colorscale=_DIVERGING, showscale=True,
                             colorbar=dict(title="attr", len=0.45, y=0.22),
                             hovertemplate="%{y}, hour %{x:.1f}: %{z:.3g}<extra></extra>"), row=rows, col=1)
    fig.update_yaxes(autorange="reversed", row=rows, col=1)
    fig.update_xaxes(title_text="hours since admission", row=rows, col=1)
    fig.update_layout(title=f"Patient {_text(patient_id)}: risk and what drove it", height=420 + 90 * len(shown)
                      + 18 * len(grid), **_LAYOUT)
    return fig


def waterfall_figure(result, patient_id: str, top: int = 10) -> go.Figure:
    """Waterfall from the base value to one patient's prediction: the ``top`` variables, then the rest."""
    i = result.index_of(patient_id)
    attr = pd.Series(result.attributions[i], index=list(result.variables))
    order = attr.abs().sort_values(ascending=False).index
    shown = attr.loc[order[:top]]
    rest = float(attr.loc[order[top:]].sum())
    labels = list(shown.index) + ([f"{len(order) - top} other variables"] if len(order) > top else [])
    values = list(shown.to_numpy()) + ([rest] if len(order) > top else [])
    fmt = ".1%" if result.output == "probability" else ".3f"
    fig = go.Figure(go.Waterfall(
        orientation="h", y=["base value"] + [_text(v) for v in labels] + ["prediction"], x=[result.base_value] + values + [0.0], measure=["absolute"] + ["relative"] * len(values) + ["total"],
        text=[f"{result.base_value:{fmt}}"] + [f"{v:+.3g}" for v in values] + [f"{result.predictions[i]:{fmt}}"],
        increasing=dict(marker=dict(color="#b2182b")), decreasing=dict(marker=dict(color="#2166ac")),
        totals=dict(marker=dict(color="#636363"))))
    fig.update_layout(title=f"{result.label or result.model_name}, patient {_text(patient_id)}: from the average "
                            f"{result.output} to this patient's", height=160 + 28 * (len(labels) + 2), **_LAYOUT)
    fig.update_yaxes(autorange="reversed")
    return fig


# -- time order: tiers and informative missingness (core.analysis.timeorder.TierResult, MissingnessResult) ------------
_TIER_COLORS = {"order_free": "#1f77b4", "time_aware": "#2ca02c", "sequence": "#d62728", "missingness": "#9e9ac8"}


def tiers_figure(tiers, missingness=None) -> go.Figure:
    """Bars with 95% CI whiskers: test AUROC of the tiers (order-free summaries, time-aware summaries, sequence
    model) and, when given, of the missingness-only model. Model names are escaped as text."""
    bars = [("order_free", f"order-free summaries<br>{_text(tiers.label)}"),
            ("time_aware", f"time-aware summaries<br>{_text(tiers.label)}"),
            ("sequence", f"sequence model<br>{_text(tiers.sequence_label)}")]
    rows = [(k, name, tiers.auroc[k], *tiers.ci[f"auroc_{k}"]) for k, name in bars]
    if missingness is not None:
        rows.append(("missingness", f"when measured only<br>{_text(missingness.label)}",
                     missingness.auroc_missingness, *missingness.ci["auroc_missingness"]))
    fig = go.Figure()
    for key, name, v, lo, hi in rows:
        lo, hi = (v, v) if not (np.isfinite(lo) and np.isfinite(hi)) else (lo, hi)
        fig.add_bar(x=[name], y=[v], marker_color=_TIER_COLORS[key], text=[f"{v:.3f}"], textposition="inside",
                    insidetextanchor="start",
                    error_y=dict(type="data", symmetric=False, array=[hi - v], arrayminus=[v - lo]),
                    hovertemplate=f"AUROC {v:.3f} [{lo:.3f}, {hi:.3f}]<extra></extra>")
    fig.add_hline(y=0.5, line_dash="dot", line_color="#999", annotation_text="chance")
    low = min([0.4] + [r[3] - 0.05 for r in rows if np.isfinite(r[3])])
    fig.update_layout(title="Where the gain comes from: test AUROC with 95% CI", showlegend=False,
                      yaxis=dict(title="AUROC", range=[max(low, 0.0), 1.0]), height=400, **_LAYOUT)
    return fig


# -- decision curves (core.evaluation.decision; Compare page and the report) ------------------------------
def decision_curve_figure(curves, models=None) -> go.Figure:
    """Net benefit against threshold probability, one line per model (with its bootstrap band when
    computed), plus treat-all (dashed) and treat-none (zero). ``curves`` is a :class:`core.evaluation.decision.DecisionCurves`.

    The y-axis is cut a little below zero, or below the lowest point of a model's curve in the shown
    thresholds (a model's curve is never clipped): treat-all falls steeply at high thresholds and would
    flatten the models' curves. The x-axis shows thresholds up to a little past the last one where some model has a
    positive net benefit (at least 0-0.1; the rest is a double-click away): at a low prevalence (1% of
    patient-hours) the whole story lies below 0.1.
    """
    t = np.asarray(curves.thresholds, dtype=float)
    order = np.argsort(t)
    t = t[order]
    fig = go.Figure()
    per = curves.unit
    if models is not None:                       # only these models' curves (the page's picker)
        from dataclasses import replace as _replace
        keep = [m for m in curves.net_benefit if m in set(models)]
        curves = _replace(curves, net_benefit={m: curves.net_benefit[m] for m in keep},
                          ci={m: v for m, v in curves.ci.items() if m in keep})
    top = max([float(curves.prevalence)] + [float(np.max(v)) for v in curves.net_benefit.values()])
    top = max(top, 1e-3)
    for name, nb in curves.net_benefit.items():
        nb = np.asarray(nb)[order]
        label = _text(curves.labels.get(name, name))
        color = MODEL_COLORS.get(str(name), "#333333")
        if name in curves.ci:
            lo, hi = (np.asarray(v)[order] for v in curves.ci[name])
            band = f"rgba({int(color[1:3], 16)},{int(color[3:5], 16)},{int(color[5:7], 16)},0.12)"
            fig.add_scatter(x=list(t) + list(t[::-1]), y=list(hi) + list(lo[::-1]), fill="toself", mode="lines",
                            fillcolor=band, line=dict(width=0), hoverinfo="skip", showlegend=False,
                            legendgroup=label)
        fig.add_scatter(x=t, y=nb, mode="lines", name=label, legendgroup=label, line=dict(color=color),
                        hovertemplate=f"{label}: net benefit %{{y:.4f}} at threshold %{{x:.2f}}<extra></extra>")
    fig.add_scatter(x=t, y=np.asarray(curves.treat_all)[order], mode="lines", name="treat all",
                    line=dict(color="#7f7f7f", dash="dash"),
                    hovertemplate="treat all: %{y:.4f} at threshold %{x:.2f}<extra></extra>")
    fig.add_scatter(x=t, y=np.zeros(len(t)), mode="lines", name="treat none", line=dict(color="#000000", width=1),
                    hoverinfo="skip")
    band = f", {curves.ci_level:.0%} bootstrap band over patients" if curves.ci else ""
    xmax = _dca_xmax(curves, t, order)
    shown = t <= xmax                  # no model's curve is cut at the bottom: only treat-all may leave the chart
    lows = [float(np.nanmin(np.asarray(nb)[order][shown])) for nb in curves.net_benefit.values() if shown.any()]
    bottom = min([-0.25 * top] + [v - 0.05 * top for v in lows if np.isfinite(v)])
    fig.update_layout(title=f"Decision curves (test {per}s{band})", xaxis_title="threshold probability",
                      yaxis_title=f"net benefit (per {per})", height=420,
                      yaxis=dict(range=[bottom, 1.1 * top]), xaxis=dict(range=[0, xmax]), **_LAYOUT)
    return fig


# -- temporal what-if (Patient timeline page; core.analysis.whatif) --------------------------------------
__all__ += ["whatif_figure"]


def whatif_figure(result) -> go.Figure:
    """Every model's risk before (dashed) and after (solid) a what-if, one colour per model, with a grey
    line at the earliest edited hour. ``result`` is a :class:`core.analysis.whatif.WhatIfResult`; model names are
    escaped as text."""
    fig = go.Figure()
    for col in [c for c in result.original.columns if c != "time_hours"]:
        label, color = _model_label(col), MODEL_COLORS.get(str(col), "#333333")
        edited = col in result.edited.columns          # one legend entry per model: its two lines toggle together
        fig.add_scatter(x=result.original["time_hours"], y=result.original[col], mode="lines", legendgroup=label,
                        name=label, showlegend=not edited, line=dict(color=color, dash="dash", width=1.5),
                        hovertemplate=f"{label}, original: risk %{{y:.1%}} at %{{x:.1f}} h<extra></extra>")
        if edited:
            fig.add_scatter(x=result.edited["time_hours"], y=result.edited[col], mode="lines", legendgroup=label,
                            name=label, line=dict(color=color, width=2.5),
                            hovertemplate=f"{label}, what-if: risk %{{y:.1%}} at %{{x:.1f}} h<extra></extra>")
    if result.first_hour is not None:
        fig.add_vline(x=float(result.first_hour), line=dict(color="#7f7f7f", width=1, dash="dot"))
    fig.update_layout(title=_text(f"Patient {result.patient_id}: risk, original (dashed) and what-if (solid)"),
                      xaxis_title="hours since admission", yaxis=dict(range=[0, 1], tickformat=".0%", title="risk"),
                      height=380, **_LAYOUT)
    return fig


def _dca_xmax(curves, t: np.ndarray, order: np.ndarray) -> float:
    """Right end of the decision-curve x-axis: 1.25 x the last threshold where a model's net benefit is positive,
    at least 0.1 (all thresholds when none is)."""
    nb = np.array([np.asarray(v)[order] for v in curves.net_benefit.values()])
    pos = t[(nb > 0).any(axis=0)] if nb.size else t[:0]
    if not len(pos):
        return float(t.max())
    return float(min(t.max(), max(0.1, 1.25 * pos.max())))


def risk_distribution_figure(scores: pd.DataFrame, thresholds: dict) -> go.Figure:
    """Predict page: each model's risks of the scored patients (patient-hours for an online run) as a
    histogram, with the model's saved threshold as a dashed line of the same colour.

    ``scores`` is :attr:`core.runs.predict.PredictionResult.scores` (``model, risk``).
    """
    fig = go.Figure()
    for name, t in thresholds.items():
        r = scores.loc[scores["model"] == name, "risk"].to_numpy(dtype=float)
        color = MODEL_COLORS.get(str(name), "#7f7f7f")
        fig.add_trace(go.Histogram(x=r, name=_model_label(name), opacity=0.55, marker_color=color,
                                   xbins=dict(start=0.0, end=1.0, size=0.02)))
        fig.add_vline(x=float(t), line=dict(color=color, dash="dash", width=1.5))
    fig.update_layout(barmode="overlay", title="Risks of the scored patients (dashed: each model's threshold)",
                      xaxis_title="risk", yaxis_title="count", xaxis=dict(range=[0, 1]), **_LAYOUT)
    return fig


__all__ += ["subgroup_figure"]


def subgroup_figure(table: pd.DataFrame, model: str) -> go.Figure:
    """One model's AUROC per subgroup with its 95% interval (a forest plot; small groups drawn hollow).

    ``table``: :func:`core.evaluation.subgroups.subgroup_metrics`; ``model``: a value of its ``model`` column.
    """
    d = table[table["model"] == model].iloc[::-1]
    y = [f"{_text(a)}: {_text(g)} (n={n:,})" for a, g, n in zip(d["attribute"], d["group"], d["n"])]
    fig = go.Figure(go.Scatter(
        x=d["auroc"], y=y, mode="markers",
        marker=dict(size=9, symbol=["circle-open" if s else "circle" for s in d["small"]]),
        error_x=dict(type="data", symmetric=False, array=(d["auroc_high"] - d["auroc"]).fillna(0),
                     arrayminus=(d["auroc"] - d["auroc_low"]).fillna(0)),
        hovertemplate="%{y}<br>AUROC %{x:.3f}<extra></extra>"))
    fig.add_vline(x=0.5, line_dash="dot", line_color="grey")
    fig.update_layout(title=f"{_text(model)}: AUROC per subgroup (hollow: small group)", xaxis_title="AUROC",
                      height=max(260, 28 * len(d) + 120), margin=dict(l=10, r=10, t=50, b=40))
    return fig


__all__ += ["cv_figure"]


def cv_figure(folds: pd.DataFrame, labels: dict) -> go.Figure:
    """Every fold's test AUROC per model (points) and the mean (a bar), best mean first."""
    order = folds.groupby("model")["auroc"].mean().sort_values(ascending=False).index
    fig = go.Figure()
    for m in order:
        d = folds[folds["model"] == m]
        fig.add_trace(go.Box(y=d["auroc"], name=_text(labels.get(m, m)), boxpoints="all", jitter=0.3,
                             pointpos=0, fillcolor="rgba(0,0,0,0)", line=dict(width=1), showlegend=False,
                             hovertemplate="AUROC %{y:.3f}<extra></extra>"))
    fig.update_layout(title="Test AUROC of every fold", yaxis_title="AUROC", height=360,
                      margin=dict(l=10, r=10, t=50, b=40))
    return fig
