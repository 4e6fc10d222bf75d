"""Does time *order* matter on this cohort? Three measurements, each with a confidence interval.

1. **Order ablation.** One sequence model (the GRU by default) is

   (a) trained and tested on the ordered hourly sequences;
   (b) retrained and tested on the *same patients* with their hours shuffled; and
   (c) the ordered model of (a) tested on the shuffled test sequences.

   How the shuffle removes order and nothing else: for each patient, the **raw hourly bins**
   (every observation of every variable keeps its value and its bin; the bin's observation mask
   goes with it) are permuted at random *within the patient's valid length* (hour 0 up to the last
   hour with any observation). Bins after the valid length (padding) stay at the end. Only then
   are the derived channels computed, by the same fitted :class:`~core.features.FeatureBuilder`:
   values are carried forward and *hours since the last observation* are measured on the shuffled
   grid, so neither can leak the original positions. Static channels (age, sex...) are untouched.
   Each patient keeps exactly the same multiset of observations; the builder's statistics
   (clipping quantiles, means, standard deviations) are permutation-invariant, so they are the
   same for both arms. Implementation: :func:`shuffle_time_bins` moves every event to its bin's
   new position (keeping its offset inside the bin), then features are rebuilt as usual.
   ``delta = auroc_ordered - auroc_shuffled`` (a minus b) with a paired bootstrap CI over the same
   test patients.

2. **Early prediction.** Every model retrained and tested when only the first ``k`` hours are
   available (features rebuilt with ``window_hours=k``), AUROC and AUPRC with bootstrap CIs.

3. **The gap.** At the full horizon: best sequence model vs best order-free (tabular) model, each
   chosen by *validation* AUROC, compared on the test patients (paired bootstrap and DeLong).

4. **Three tiers** (``TimeOrderConfig.tiers``). Where does the gap come from? At the full horizon, on
   the same test rows: (a) the best order-free model on order-free summaries, (b) the order-free
   models refitted on time-aware summaries (``FeatureConfig(summaries="time_aware")``: hour of the
   min and the max, slope per sub-window, last-k-hours statistics; online, from data up to each
   hour only), the best again chosen by validation AUROC, and (c) the best sequence model.
   ``b - a`` against ``c - a`` says how much of the sequence model's advantage hand-made timing
   features recover.

5. **Informative missingness.** Tier (a)'s model refitted on *when* variables were
   measured alone (``summaries="missingness_only"``: counts, measured bins, hours since the last
   measurement, measurement rate; no value at all) against the same model on the values (tier a).

The refits of 4 and 5 go through the same protocol (builders fitted on the training patients) with
the quick preset sizes at most (with ``preset="full"`` tier (a) is refitted at quick too, so the
tiers compare like with like).

Patients are split once (train / validation / test, stratified, seeded) and the split is shared by
every horizon, model and arm; bootstrap resamples of the test patients are shared too (paired).

**On a saved run** (``run_timeorder(cohort, TimeOrderConfig.for_run(run), run=run)``) the split, the
feature builder, the preset, the seed and the models are the run's: the ordered arm of the ablation,
every full-horizon point and both arms of the gap are the run's own fitted models and the risks it
saved (so their AUROCs are those of its metrics.json); only what must be refitted is (the shuffled arm,
the shorter horizons of the stay task, the tiers and the missingness model), on the run's split and seed.
:func:`save_timeorder` keeps the result with the run (``analyses/timeorder.json``), :func:`load_timeorder`

The package: :mod:`~core.analysis.timeorder.config` (the config), :mod:`~core.analysis.timeorder.flow` (the one
flow), :mod:`~core.analysis.timeorder.tasks` (the stay and online task shapes as strategies of that flow, and how
each pools scores), :mod:`~core.analysis.timeorder.shuffle`, :mod:`~core.analysis.timeorder.tiers`,
:mod:`~core.analysis.timeorder.saved_run` (a saved run's split, risks and models; keeping the result with the run)
and :mod:`~core.analysis.timeorder.results`. Import from here.
reads it back.

Examples
--------
>>> res = run_timeorder(cohort, TimeOrderConfig(models=("lr", "gru"), horizons_hours=(12, 48)))  # doctest: +SKIP
>>> print(res.verdict)                                                                            # doctest: +SKIP
On this cohort keeping time order adds +0.112 AUROC [+0.081, +0.145] ...
"""
from core.analysis.timeorder.config import Progress, TimeOrderConfig
from core.analysis.timeorder.flow import run_timeorder
from core.analysis.timeorder.results import (TIERS, AblationResult, GapResult, MissingnessResult, TierResult,
                                             TimeOrderResult, describe_evidence)
from core.analysis.timeorder.saved_run import TIMEORDER_FILE, load_timeorder, save_timeorder
from core.analysis.timeorder.shuffle import SHUFFLE_DESCRIPTION, shuffle_time_bins, valid_lengths

__all__ = ["TimeOrderConfig", "TimeOrderResult", "AblationResult", "GapResult", "TierResult", "MissingnessResult",
           "run_timeorder", "shuffle_time_bins", "valid_lengths", "describe_evidence", "SHUFFLE_DESCRIPTION",
           "TIERS", "Progress", "save_timeorder", "load_timeorder", "TIMEORDER_FILE"]
