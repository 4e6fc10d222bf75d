"""core.plots: charts speak the pages' words and never cut a model's curve."""
import numpy as np
import pandas as pd

from core import plots
from core.config import EvaluationConfig
from core.evaluation.decision import curves_from_results
from core.evaluation.metrics import evaluate


def test_decision_curves_never_clip_a_models_curve():
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=400) < 0.2).astype(int)
    good = np.clip(0.2 + 0.5 * y + rng.normal(0, 0.15, 400), 0.01, 0.99)
    bad = np.clip(0.7 - 0.5 * y + rng.normal(0, 0.15, 400), 0.01, 0.99)     # worse than treating nobody
    results = {n: evaluate(n, y, p, 0.5, config=EvaluationConfig(n_bootstrap=0), label=n.upper())
               for n, p in (("gru", good), ("grud", bad))}
    fig = plots.decision_curve_figure(curves_from_results(results, n_bootstrap=0))
    lo, hi = fig.layout.yaxis.range
    xmax = fig.layout.xaxis.range[1]
    for trace in fig.data:
        if trace.name in ("GRU", "GRUD"):
            x, v = np.asarray(trace.x), np.asarray(trace.y)
            assert (v[x <= xmax] >= lo).all() and (v[x <= xmax] <= hi).all(), trace.name


def test_importance_and_agreement_name_models_in_words_with_their_colours():
    table = pd.DataFrame({"lr": [0.6, 0.4], "grud": [0.3, 0.7]}, index=["HR", "Lactate"])
    fig = plots.importance_figure(table)
    assert [t.name for t in fig.data] == ["logistic regression", "GRU-D"]
    assert fig.data[0].marker.color == plots.MODEL_COLORS["lr"]
    agree = plots.agreement_figure(pd.DataFrame([[1, 0.2], [0.2, 1]], index=["lr", "grud"], columns=["lr", "grud"]))
    assert list(agree.data[0].x) == ["logistic regression", "GRU-D"]


def test_the_sampling_chart_gives_every_variable_its_own_row():
    intervals = pd.DataFrame({"variable": [f"Var{i}" for i in range(40)], "median_hours": np.linspace(0.5, 24, 40),
                              "p90_hours": np.linspace(1, 48, 40)})
    fig = plots.sampling_figure(intervals)
    assert fig.data[0].orientation == "h" and list(fig.data[0].y) == list(intervals["variable"])
    assert fig.layout.height >= 20 * 40                  # about 20 px a name: none overlaps the next


def test_decision_curves_of_chosen_models_only():
    rng = np.random.default_rng(1)
    y = (rng.uniform(size=300) < 0.3).astype(int)
    results = {n: evaluate(n, y, np.clip(0.3 + s * y + rng.normal(0, 0.2, 300), 0.01, 0.99), 0.5,
                           config=EvaluationConfig(n_bootstrap=0), label=n.upper())
               for n, s in (("lr", 0.2), ("gru", 0.4), ("rf", 0.1))}
    fig = plots.decision_curve_figure(curves_from_results(results, n_bootstrap=0), models=["gru", "lr"])
    assert {t.name for t in fig.data} == {"LR", "GRU", "treat all", "treat none"}
