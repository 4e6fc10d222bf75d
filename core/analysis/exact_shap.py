"""The exact explainers: TreeSHAP for the tree ensembles, linear SHAP for logistic regression.

* **Random forest, gradient boosting** -> ``shap.TreeExplainer`` (path-dependent TreeSHAP). Exact
  Shapley values of the tree ensemble in polynomial time; no background needed (the trees' own
  training cover is the reference distribution), NaN follows each split's learned default branch.
  RF explains the probability of the positive class, gradient boosting its log-odds (raw score).
* **Logistic regression** -> ``shap.LinearExplainer`` on the pipeline's *transformed* space
  (after median imputation + missing indicators + scaling, where the model is exactly linear), with
  an independent masker over background patients. Each transformed column (a value or its
  missing-indicator) is mapped back to its clinical variable and summed there. Explains log-odds; exact.

Each explainer returns the parts of an :class:`~core.analysis.explanation.ExplanationResult` as a dict
(``attributions`` per variable, ``variables``, ``base``, ``pred``, ``output``, ``method``), which
:func:`core.analysis.explain.explain` turns into the result.
"""
from __future__ import annotations

import numpy as np

from core.analysis.explanation import group_by_variable, unique_variables
from core.exceptions import RunError
from core.features import FeatureSet

__all__ = ["explain_tree", "explain_linear", "transformed_variables"]


def explain_tree(model, fs: FeatureSet, bg: FeatureSet | None, nsamples, rng) -> dict:
    """Path-dependent TreeSHAP of a random forest (probability) or gradient boosting (log-odds).

    Parameters
    ----------
    model : RandomForestClassifier or HistGradientBoostingClassifier, fitted
    fs : FeatureSet
        The patients to explain.
    bg : FeatureSet or None
        Unused: the trees' training cover is the reference.
    nsamples : int
        Unused (exact).
    rng : numpy.random.Generator
        Unused.

    Returns
    -------
    dict
        ``attributions`` (n_patients, n_variables), ``variables``, ``base`` (float), ``pred``
        (n_patients,), ``output`` and ``method``: the parts of an ExplanationResult.
    """
    import shap
    from sklearn.ensemble import HistGradientBoostingClassifier

    X = fs.X_tab
    variables = unique_variables(fs.tab_variables)
    # Path-dependent TreeSHAP: exact, needs no background, and handles NaN via each node's default branch.
    explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
    sv = np.asarray(explainer.shap_values(X, check_additivity=False), dtype=float)
    base = np.asarray(explainer.expected_value, dtype=float).reshape(-1)
    pos = int(np.flatnonzero(model.classes_ == model.classes_[-1])[0])
    if isinstance(model, HistGradientBoostingClassifier):
        output, pred = "log-odds", np.asarray(model.decision_function(X), dtype=float).reshape(-1)
        sv, base = (sv[..., -1] if sv.ndim == 3 else sv), float(base[-1])
    else:
        output, pred = "probability", np.asarray(model.predict_proba(X), dtype=float)[:, pos]
        sv, base = (sv[..., pos] if sv.ndim == 3 else sv), float(base[pos] if len(base) > 1 else base[0])
    return {"attributions": group_by_variable(sv, fs.tab_variables, variables), "variables": variables, "base": base,
            "pred": pred, "output": output, "method": "TreeSHAP (shap.TreeExplainer, path-dependent, exact)"}


# --------------------------------------------------------------------------------------------
# classical: linear
# --------------------------------------------------------------------------------------------
def transformed_variables(pipe, tab_variables) -> list[str]:
    """Clinical variable of each column after the pipeline's pre-processing (values, then missing indicators).

    Parameters
    ----------
    pipe : Pipeline, fitted
        Its ``"impute"`` step (when present) adds a missing indicator per feature that had gaps.
    tab_variables : sequence of str
        The variable of each tabular feature (``FeatureSet.tab_variables``).

    Returns
    -------
    list of str, one per column the pipeline's last step reads
    """
    imputer = pipe.named_steps.get("impute")
    cols = list(tab_variables)
    if imputer is not None and getattr(imputer, "indicator_", None) is not None:
        cols += [tab_variables[j] for j in imputer.indicator_.features_]
    return cols


def explain_linear(pipe, fs: FeatureSet, bg: FeatureSet, nsamples, rng) -> dict:
    """Linear SHAP of a logistic-regression pipeline on its transformed columns, summed per variable (log-odds).

    Parameters
    ----------
    pipe : Pipeline ending in LogisticRegression, fitted
    fs : FeatureSet
        The patients to explain.
    bg : FeatureSet
        Background patients of the independent masker.
    nsamples : int
        Unused (exact).
    rng : numpy.random.Generator
        Unused.

    Returns
    -------
    dict
        ``attributions`` (n_patients, n_variables), ``variables``, ``base`` (float), ``pred``
        (n_patients,), ``output`` and ``method``: the parts of an ExplanationResult.

    Raises
    ------
    RunError
        The pipeline's columns do not match its imputer's (a model of another version).
    """
    import shap

    pre, lr = pipe[:-1], pipe[-1]
    Z, Zb = pre.transform(fs.X_tab), pre.transform(bg.X_tab)
    zvars = transformed_variables(pipe, fs.tab_variables)
    if Z.shape[1] != len(zvars):
        raise RunError(f"The logistic-regression pipeline produced {Z.shape[1]} columns, expected {len(zvars)} "
                       "(features + missing indicators). The model does not match this version: train again.")
    explainer = shap.LinearExplainer(lr, shap.maskers.Independent(Zb, max_samples=len(Zb)))
    sv = np.asarray(explainer.shap_values(Z), dtype=float)
    sv = sv[..., -1] if sv.ndim == 3 else sv
    base = float(np.asarray(explainer.expected_value, dtype=float).reshape(-1)[-1])
    variables = unique_variables(fs.tab_variables)
    return {"attributions": group_by_variable(sv, zvars, variables), "variables": variables, "base": base,
            "pred": np.asarray(lr.decision_function(Z), dtype=float).reshape(-1), "output": "log-odds",
            "method": "linear SHAP (shap.LinearExplainer on imputed+scaled features, independent masker, exact)"}

