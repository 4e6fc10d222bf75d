"""Tiers and informative missingness: where the sequence model's gain comes from, on the same test rows.

(a) the best order-free model on order-free summaries, (b) the order-free models refitted on time-aware
summaries, (c) the best sequence model; and tier (a)'s model refitted on *when* variables were measured alone.
The refits go through the same protocol, on the analysis's split, at the quick preset sizes at most.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.analysis.timeorder.config import Progress, TimeOrderConfig
from core.analysis.timeorder.results import TIERS, MissingnessResult, TierResult, describe_evidence, format_ci
from core.analysis.timeorder.tasks import (ClusterPooling, PatientPooling, auprc_score, auroc_score,
                                           best_by_validation)
from core.config import FeatureConfig
from core.data.cohort import Cohort
from core.exceptions import InternalError
from core.models import registry
from core.training.protocol import ProtocolRequest, ProtocolResult, run_protocols

__all__ = ["measure_tiers", "split_progress"]


def _tier_kinds(config: TimeOrderConfig) -> tuple[str, tuple[str, ...]]:
    """Preset of the tier fits (at most quick) and which summaries they refit (order-free too when the
    preset differs from the analysis', so the three tiers use the same model sizes)."""
    preset = "quick" if config.preset == "full" else config.preset
    return preset, ("time_aware", "missingness_only") + (("order_free",) if preset != config.preset else ())


def split_progress(report: Progress, config: TimeOrderConfig, n_main: int) -> tuple[Progress, Progress]:
    """``report`` split in two monotone parts: the main batch of ``n_main`` fits, then the tier fits (by fit
    count), so the bar moves evenly over the whole analysis."""
    n_tab = sum(registry.get(n).input_kind == "tabular" for n in config.models)
    n_tiers = n_tab + len(_tier_kinds(config)[1]) - 1 if config.tiers and n_tab else 0
    cut = n_main / (n_main + n_tiers)

    def main(msg: str, frac: float) -> None:
        report(msg, cut * frac)

    def rest(msg: str, frac: float) -> None:
        report(msg, cut + (1 - cut) * frac)
    return main, rest


def measure_tiers(cohort: Cohort, splits: dict, features: FeatureConfig, config: TimeOrderConfig, full: ProtocolResult,
                  seq: tuple, y: np.ndarray, pool: PatientPooling | ClusterPooling, progress: Progress, backend
                  ) -> tuple[TierResult | None, MissingnessResult | None]:
    """Tiers (a) / (b) / (c) and the missingness-only model on the test rows of ``full`` (labels ``y``, same order).

    ``seq`` is ``(name, test risks)`` of tier (c). The refits run the protocol on ``splits`` with
    ``features`` of other ``summaries``: every order-free model on time-aware summaries (tier b: the best
    by validation AUROC), the best order-free model of ``full`` (tier a) on missingness only (and on
    order-free summaries again when the tier preset differs from the analysis'). ``(None, None)`` when
    ``config.tiers`` is off or ``config.models`` holds no order-free model.
    """
    tab = [n for n in config.models if registry.get(n).input_kind == "tabular"]
    if not (config.tiers and tab):
        return None, None
    name = best_by_validation(tab, full)
    spec = registry.get(name)
    preset, refit = _tier_kinds(config)
    tab_specs = tuple(registry.get(n) for n in tab)
    requests = [ProtocolRequest(cohort, tab_specs if k == "time_aware" else (spec,), splits,
                                replace(features, summaries=k), label=f"tiers: {k.replace('_', '-')} summaries")
                for k in refit]
    res = dict(zip(refit, run_protocols(requests, evaluation=config.evaluation, preset=preset,
                                        random_state=config.random_state, progress=progress, backend=backend,
                                        keep_features=False)))
    ta_name = best_by_validation(tab, res["time_aware"])
    p = {"order_free": full.test[name].y_proba}
    for k, r in res.items():
        used = ta_name if k == "time_aware" else name
        if not np.array_equal(r.test[used].y_true, y):
            raise InternalError("The tier refits were not scored on the same test rows as the analysis, in the same "
                                "order.")
        p[k] = r.test[used].y_proba
    p["sequence"] = seq[1]
    auroc = {k: auroc_score(y, q) for k, q in p.items()}
    auprc = {k: auprc_score(y, q) for k, q in p.items()}
    ci = {}
    for k, q in p.items():
        b = pool.metrics(y, q)
        ci[f"auroc_{k}"], ci[f"auprc_{k}"] = b["auroc"], b["auprc"]
    diffs = {"time_aware_minus_order_free": pool.paired(y, p["time_aware"], p["order_free"]),
             "sequence_minus_order_free": pool.paired(y, p["sequence"], p["order_free"]),
             "sequence_minus_time_aware": pool.paired(y, p["sequence"], p["time_aware"])}
    seq_label = registry.get(seq[0]).label
    gain = diffs["sequence_minus_order_free"]
    recovered = diffs["time_aware_minus_order_free"]["difference"] / gain["difference"] \
        if describe_evidence(gain["ci_low"], gain["ci_high"]) == "positive" else float("nan")
    ta_label = registry.get(ta_name).label
    tiers = TierResult(model=name, label=spec.label, time_aware_model=ta_name, time_aware_label=ta_label,
                       sequence_model=seq[0], sequence_label=seq_label, preset=preset,
                       auroc={k: auroc[k] for k, _ in TIERS}, auprc={k: auprc[k] for k, _ in TIERS},
                       ci={k: v for k, v in ci.items() if not k.endswith("missingness_only")}, differences=diffs,
                       recovered=recovered,
                       sentence=_tier_sentence(spec.label, ta_label, seq_label, diffs, recovered))
    mv = pool.paired(y, p["order_free"], p["missingness_only"])
    a_m, a_v = auroc["missingness_only"], auroc["order_free"]
    share = (a_m - 0.5) / (a_v - 0.5) if np.isfinite(a_v) and a_v > 0.5 else float("nan")
    m_ci = {"auroc_missingness": ci["auroc_missingness_only"], "auroc_values": ci["auroc_order_free"],
            "auprc_missingness": ci["auprc_missingness_only"], "auprc_values": ci["auprc_order_free"]}
    missing = MissingnessResult(model=name, label=spec.label, auroc_missingness=a_m, auroc_values=a_v,
                                auprc_missingness=auprc["missingness_only"], auprc_values=auprc["order_free"],
                                ci=m_ci, difference=mv["difference"], ci_low=mv["ci_low"], ci_high=mv["ci_high"],
                                p_value=mv["p_value"], share=share,
                                sentence=_missingness_sentence(spec.label, a_m, a_v, m_ci, mv, share))
    return tiers, missing


def _tier_sentence(label: str, ta_label: str, seq_label: str, diffs: dict, recovered: float) -> str:
    """Where the sequence model's gain over order-free summaries comes from, in words (numbers with CIs)."""
    b, c, cb = (diffs[k] for k in ("time_aware_minus_order_free", "sequence_minus_order_free",
                                   "sequence_minus_time_aware"))
    ev_b, ev_c, ev_cb = (describe_evidence(d["ci_low"], d["ci_high"]) for d in (b, c, cb))
    models = f"{label} on both" if ta_label == label else f"{label} on order-free, {ta_label} on time-aware summaries"
    who = f"the {label}'s" if ta_label == label else f"the best order-free model's ({label} -> {ta_label})"

    def num(d):
        return f"{d['difference']:+.3f} {format_ci(d['ci_low'], d['ci_high'])}"
    if ev_c == "positive":
        share = f"; {recovered:.0%} recovered" if ev_b == "positive" else ""
        head = (f"Time-aware summaries recover {num(b)} of the {num(c)} AUROC points the {seq_label} gains over "
                f"order-free summaries ({models}{share})")
        if ev_b == "positive" and ev_cb != "positive":
            tail = ("most of the advantage of order here is *when* things happen, which hand-made features can "
                    f"carry (what remains for the {seq_label}, {num(cb)}, is not significant)")
        elif ev_b == "positive":
            tail = (f"part of the advantage is *when* things happen, but the {seq_label} still gains {num(cb)} over "
                    "the time-aware summaries: it uses more of the order than these features hold")
        elif ev_b == "negative":
            tail = "the time-aware features made the order-free model worse, so they do not explain the advantage"
        else:
            tail = ("no evidence that these hand-made timing features carry the advantage (their CI includes "
                    f"zero): the {seq_label} uses the order in ways they do not capture, or the sample is too small "
                    "to tell")
        return f"{head}: {tail}."
    what = {"negative": f"the {seq_label} does significantly worse than order-free summaries ({num(c)} AUROC)",
            "none": f"the {seq_label} does not significantly beat order-free summaries ({num(c)} AUROC, CI includes "
                    "zero)"}[ev_c]
    extra = {"positive": f"even so, time-aware summaries lift {who} AUROC by {num(b)}: knowing *when* "
                         "things happened helps the classical model",
             "negative": f"time-aware summaries change {who} AUROC by {num(b)} (worse: the extra features "
                         "cost more than they add here)",
             "none": f"time-aware summaries change {who} AUROC by {num(b)}, no evidence that timing adds to "
                     "the order-free summaries"}[ev_b]
    return f"There is no significant order advantage to explain: {what}; {extra}."


def _missingness_sentence(label: str, a_m: float, a_v: float, ci: dict, mv: dict, share: float) -> str:
    """How much of the signal is in *when* things were measured, in words."""
    lo, hi = ci["auroc_missingness"]
    head = (f"The same {label} model fitted on when variables were measured alone (no values) reaches AUROC {a_m:.3f} "
            f"[{lo:.3f}, {hi:.3f}], against {a_v:.3f} [{ci['auroc_values'][0]:.3f}, {ci['auroc_values'][1]:.3f}] "
            "for the same model on the values")
    if not np.isfinite(share):
        return head + ": the values model is no better than chance, so no share of its signal can be given."
    part = f"{share:.0%} of the values model's AUROC above chance (0.5)"
    if np.isfinite(lo) and lo > 0.5:
        meaning = ("so a large part of the signal is in *when* things were measured" if share >= 0.5 else
                   "so some of the signal is in *when* things were measured")
    else:
        meaning = "but its CI includes chance, so there is no evidence that the measurement pattern alone carries signal"
    ev = describe_evidence(mv["ci_low"], mv["ci_high"])
    values = {"positive": f"the values add {mv['difference']:+.3f} {format_ci(mv['ci_low'], mv['ci_high'])}",
              "negative": f"the values model is worse by {-mv['difference']:.3f} "
                          f"{format_ci(mv['ci_low'], mv['ci_high'])}",
              "none": f"the values add {mv['difference']:+.3f} {format_ci(mv['ci_low'], mv['ci_high'])}, not "
                      "significant"}[ev]
    return f"{head}: {part}, {meaning}; {values}."
