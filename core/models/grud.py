"""GRU-D (Che et al. 2018, Sci Rep 8:6085): a GRU that decays towards the mean while data are missing.

Che et al., "Recurrent Neural Networks for Multivariate Time Series with Missing Values". GRU-D reads
the same ``X_seq`` as :class:`~core.models.recurrent.RecurrentClassifier` (see :mod:`core.features`), is trained,
predicts and is saved as it is (:class:`~core.models.torchbase.TorchSequenceClassifier`),
but uses the channels as the paper does instead of as plain inputs:

* ``value`` is ``x_last`` (the last observation, carried forward; ``0`` = training mean before the first);
* ``mask`` is ``m``; ``delta`` is turned back into hours, ``gap = expm1(delta * log1p(cap))``;
* ``static`` and ``static_missing`` (and the online task's ``time`` channel) are appended to the GRU
  input at every step.

Per step, with ``x_mean = 0`` (the training mean in standardised units)::

    gamma_x = exp(-relu(w_gx * gap + b_gx))            # diagonal: one rate per variable
    x_hat   = m * x + (1 - m) * (gamma_x * x_last + (1 - gamma_x) * x_mean)
    gamma_h = exp(-relu(W_gh @ gap + b_gh))            # full: variables -> hidden units
    h       = gamma_h * h_prev
    r       = sigmoid(W_r x_hat + U_r h + V_r m + S_r s + b_r)
    z       = sigmoid(W_z x_hat + U_z h + V_z m + S_z s + b_z)
    h_tilde = tanh(W x_hat + U (r * h) + V m + S s + b)
    h_t     = (1 - z) * h + z * h_tilde                # the paper's convention (torch.nn.GRU swaps z, 1 - z)

Everything that does not depend on ``h`` (decays, ``x_hat``, the input parts of all three gates) is
computed for all steps at once; only the recurrence is a Python loop over time, so it is causal by
construction. One difference from the paper: ``delta`` is 0 at a step where the variable is observed
(the paper uses the gap since the observation before), so the hidden state is not decayed for
variables measured in the current step; ``x_hat`` is identical either way.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from core.models.recurrent import recurrent_preset
from core.models.torchbase import TorchSequenceClassifier

__all__ = ["GRUDClassifier", "make_grud", "GRUD_ONLINE_SETTINGS"]

#: GRU-D's own settings for per-hour targets (they differ from the other networks' ``ONLINE_SETTINGS``): in
#: 3-fold inner CV on the 2019 training stays (bench/tune_online.py, issue 20) GRU-D reached 0.781 mean hourly
#: AUROC with these (32 units, max-pooling, positives x30, early stopping on an inner split's AUROC, every hour
#: weighted alike) against 0.763 with the plain GRU's settings (64 units, 12 fixed epochs, positives x5).
GRUD_ONLINE_SETTINGS = {"hidden_size": 32, "dropout": 0.2, "weight_decay": 1e-4, "max_epochs": 30, "batch_size": 32,
                        "lr": 1e-3, "patience": 8, "pooling": "max", "pos_weight": 30.0, "stop_on": "auroc",
                        "bucket_batches": 20}
#: channel kinds of ``X_seq`` (as ``core.features.CHANNEL_KINDS``) and the part of GRU-D each feeds.
_KINDS = ("value", "mask", "delta", "static", "static_missing", "time")


def _split_kinds(channel_kinds) -> dict[str, list[int]]:
    """Channel indices per role: ``value``, ``mask``, ``delta`` and ``static`` (both static kinds)."""
    kinds = list(channel_kinds)
    unknown = sorted(set(kinds) - set(_KINDS))
    if unknown:
        raise ValueError(f"GRUDClassifier.channel_kinds holds unknown kinds {unknown}; expected only {_KINDS}. "
                         "Pass FeatureSet.seq_kinds: set_params(channel_kinds=tuple(fs.seq_kinds)).")
    roles = {r: [i for i, k in enumerate(kinds) if k == r] for r in ("value", "mask", "delta")}
    roles["static"] = [i for i, k in enumerate(kinds) if k in ("static", "static_missing", "time")]
    return roles


class _GRUDNet(nn.Module):
    """GRU-D over ``(n, T, C)`` -> one logit per step ``(n, T)``.

    Parameters
    ----------
    channel_kinds : sequence of str, one per channel (``FeatureSet.seq_kinds``)
    hidden : int
    dropout : float
        Before the output layer.
    delta_cap_hours : float
        The cap used by the features' ``delta`` channel (``FeatureConfig.delta_cap_hours``).
    pooling : {"none", "max"}
        ``"max"`` feeds ``cat[h, cummax(h)]`` (causal) to the output layer.
    """

    def __init__(self, channel_kinds, hidden: int, dropout: float, delta_cap_hours: float,
                 pooling: str = "none") -> None:
        super().__init__()
        roles = _split_kinds(channel_kinds)
        n_var, n_static = len(roles["value"]), len(roles["static"])
        self.pooling = pooling
        self.hidden = hidden
        self.log_cap = math.log1p(delta_cap_hours)
        for role, idx in roles.items():  # rebuilt from the params on load, so not in the state_dict
            self.register_buffer(f"idx_{role}", torch.tensor(idx, dtype=torch.long), persistent=False)
        # Decays start at zero bias (no decay at gap 0) and with weights scaled by 1/cap, i.e. the
        # default Linear initialisation applied to gap / cap: decay is mild at first, not saturated.
        bound = 1.0 / (math.sqrt(n_var) * delta_cap_hours)
        self.w_gx = nn.Parameter(torch.empty(n_var).uniform_(0.0, 1.0 / delta_cap_hours))
        self.b_gx = nn.Parameter(torch.zeros(n_var))
        self.gamma_h = nn.Linear(n_var, hidden)
        nn.init.uniform_(self.gamma_h.weight, -bound, bound)
        nn.init.zeros_(self.gamma_h.bias)
        # Input parts of r, z, h~ (W x_hat + V m + S s + b), stacked: (2V + S) -> 3H.
        self.inp = nn.Linear(2 * n_var + n_static, 3 * hidden)
        self.hid_rz = nn.Linear(hidden, 2 * hidden, bias=False)   # U_r, U_z
        self.hid_n = nn.Linear(hidden, hidden, bias=False)        # U (applied to r * h)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden * (2 if pooling == "max" else 1), 1)

    # -- pieces shared by step() and hidden_states() -----------------------------------------
    def split(self, x: torch.Tensor):
        """``(value, mask, gap_hours, static)`` from ``x`` of shape ``(..., C)``."""
        gap = torch.expm1(x[..., self.idx_delta] * self.log_cap)
        return x[..., self.idx_value], x[..., self.idx_mask], gap, x[..., self.idx_static]

    def decays(self, gap: torch.Tensor):
        """``(gamma_x (..., V), gamma_h (..., H))`` from gaps in hours ``(..., V)``."""
        gamma_x = torch.exp(-torch.relu(gap * self.w_gx + self.b_gx))
        gamma_h = torch.exp(-torch.relu(self.gamma_h(gap)))
        return gamma_x, gamma_h

    @staticmethod
    def impute(x: torch.Tensor, m: torch.Tensor, gamma_x: torch.Tensor) -> torch.Tensor:
        """``x_hat``; ``x`` is the carried-forward value, so it is both ``x_t`` and ``x_last``."""
        x_mean = 0.0  # training mean in standardised units
        return m * x + (1 - m) * (gamma_x * x + (1 - gamma_x) * x_mean)

    def recur(self, gx: torch.Tensor, gamma_h: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        """One GRU-D update from the precomputed input part ``gx`` ``(n, 3H)``."""
        h = gamma_h * h_prev
        r, z = torch.sigmoid(gx[:, :2 * self.hidden] + self.hid_rz(h)).chunk(2, dim=1)
        h_tilde = torch.tanh(gx[:, 2 * self.hidden:] + self.hid_n(r * h))
        return h + z * (h_tilde - h)  # = (1 - z) * h + z * h_tilde

    # -- public ----------------------------------------------------------------------------
    def step(self, x: torch.Tensor, m: torch.Tensor, gap: torch.Tensor, s: torch.Tensor,
             h_prev: torch.Tensor) -> torch.Tensor:
        """One step -> ``h_t`` ``(n, H)``.

        ``x, m, gap``: ``(n, V)`` (gap in hours); ``s``: ``(n, S)``; ``h_prev``: ``(n, H)``.
        """
        gamma_x, gamma_h = self.decays(gap)
        x_hat = self.impute(x, m, gamma_x)
        return self.recur(self.inp(torch.cat([x_hat, m, s], dim=-1)), gamma_h, h_prev)

    def hidden_states(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden state after every step, ``(n, T, H)``, from ``x`` ``(n, T, C)`` and ``h_0 = 0``."""
        xv, m, gap, s = self.split(x)
        gamma_x, gamma_h = self.decays(gap)
        gx = self.inp(torch.cat([self.impute(xv, m, gamma_x), m, s], dim=-1))  # all steps at once
        h = x.new_zeros(x.shape[0], self.hidden)
        states = []
        for t in range(x.shape[1]):
            h = self.recur(gx[:, t], gamma_h[:, t], h)
            states.append(h)
        return torch.stack(states, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (n, T, C) -> logits (n, T)
        h = self.hidden_states(x)
        if self.pooling == "max":
            h = torch.cat([h, torch.cummax(h, dim=1).values], dim=-1)
        return self.out(self.drop(h)).squeeze(-1)


class GRUDClassifier(TorchSequenceClassifier):
    """GRU-D classifier of ``X_seq`` ``(n_patients, n_timesteps, n_features)``.

    Same contract, training loop (target replication, early stopping, seed ensemble) and outputs as
    :class:`~core.models.recurrent.RecurrentClassifier` (both are
    :class:`~core.models.torchbase.TorchSequenceClassifier`); only the network differs (see the module
    docstring for the equations): one GRU-D layer whose gates read the channels directly.

    Parameters
    ----------
    channel_kinds : tuple of str, one per channel
        ``FeatureSet.seq_kinds``; required before ``fit``: ``set_params(channel_kinds=tuple(fs.seq_kinds))``.
        The i-th ``value``, ``mask`` and ``delta`` channels must belong to the same variable.
    delta_cap_hours : float
        Must equal ``FeatureConfig.delta_cap_hours`` of the features (to turn ``delta`` back into hours).
    hidden_size, dropout, max_epochs, batch_size, lr, weight_decay, patience, validation_fraction,
    replication_weight, pooling, n_seeds, device, random_state, stop_on, pos_weight, progress, bucket_batches
        Shared by every torch model: see :class:`~core.models.torchbase.TorchSequenceClassifier`;
        ``dropout`` applies before the output layer.

    Raises
    ------
    ValueError
        At ``fit``: ``channel_kinds`` missing, inconsistent (unequal value/mask/delta counts, unknown
        kinds) or of a length different from the channels of ``X``.

    Examples
    --------
    >>> clf = make_grud("test", random_state=0).set_params(channel_kinds=tuple(fs.seq_kinds))  # doctest: +SKIP
    >>> clf.fit(fs.X_seq, y).predict_proba_over_time(fs.X_seq).shape                             # doctest: +SKIP
    (40, 6)
    """

    #: runs saved before GRU-D had a base of its own hold the parameters it inherited from RecurrentClassifier,
    #: with the values it accepted: one GRU layer (the only cell and depth it took), and the input projection
    #: it ignored.
    RETIRED_PARAMS = {"cell": ("gru",), "num_layers": (1,), "input_projection": (True, False)}

    def __init__(self, *, channel_kinds=None, delta_cap_hours=48.0, **shared):
        super().__init__(**shared)
        self.channel_kinds = channel_kinds
        self.delta_cap_hours = delta_cap_hours

    def _check_params(self) -> None:
        super()._check_params()
        if self.channel_kinds is None:
            raise ValueError("GRUDClassifier.channel_kinds is None; GRU-D needs to know which channels are "
                             "values, masks and deltas. Set it before fit: "
                             "clf.set_params(channel_kinds=tuple(fs.seq_kinds)).")
        if not self.delta_cap_hours > 0:
            raise ValueError(f"GRUDClassifier.delta_cap_hours must be > 0 (FeatureConfig.delta_cap_hours); "
                             f"got {self.delta_cap_hours!r}. Example: GRUDClassifier(delta_cap_hours=48).")
        roles = _split_kinds(self.channel_kinds)
        counts = {r: len(roles[r]) for r in ("value", "mask", "delta")}
        if len(set(counts.values())) != 1 or counts["value"] == 0:
            raise ValueError(f"GRUDClassifier.channel_kinds must hold as many 'value', 'mask' and 'delta' "
                             f"channels (at least one each); got {counts}. "
                             "Pass FeatureSet.seq_kinds: set_params(channel_kinds=tuple(fs.seq_kinds)).")

    def _new_net(self) -> _GRUDNet:
        if len(self.channel_kinds) != self.n_features_in_:
            raise ValueError(f"GRUDClassifier.channel_kinds has {len(self.channel_kinds)} entries but X has "
                             f"{self.n_features_in_} channels. Pass the seq_kinds of the same FeatureSet "
                             "as X: set_params(channel_kinds=tuple(fs.seq_kinds)).")
        return _GRUDNet(self.channel_kinds, int(self.hidden_size), float(self.dropout),
                        float(self.delta_cap_hours), self.pooling)

    def _progress_name(self) -> str:
        return "gru"          # as the progress messages have always named it (GRU-D decays a GRU)


def make_grud(preset: str = "full", random_state=None, task: str = "stay") -> GRUDClassifier:
    """Registry factory for GRU-D at the preset sizes of the other recurrent models.

    Parameters
    ----------
    preset : {"test", "quick", "full"}
        See :func:`~core.models.recurrent.recurrent_preset` (the same settings as RNN, LSTM and GRU).
    random_state : int, optional
    task : {"stay", "online"}

    Returns
    -------
    GRUDClassifier
        With ``channel_kinds=None``: set it before fit, ``set_params(channel_kinds=tuple(fs.seq_kinds))``.
    """
    params = recurrent_preset(preset, task)
    params.pop("input_projection", None)      # the other networks' input layer; GRU-D's gates read the channels
    if task == "online" and preset != "test":
        params.update(GRUD_ONLINE_SETTINGS)
    return GRUDClassifier(random_state=random_state, **params)
