"""The shared base of the torch sequence classifiers: parameters, training loop, prediction, saving, loading.

:class:`TorchSequenceClassifier` holds everything the networks of :mod:`core.models.recurrent` (RNN, LSTM,
GRU) and :mod:`core.models.grud` (GRU-D) have in common; a subclass declares only its own parameters and
builds its network (``_new_net``). Design choices (why):

* **Target replication**: the loss is applied at every valid step (weight ``replication_weight``)
  as well as the final one, so ``predict_proba_over_time`` gives a meaningful risk after each hour.
* **No class re-weighting**: plain log-loss keeps probabilities calibrated; imbalance is handled by
  thresholding on validation data (see :mod:`core.evaluation.metrics`).
* **Early stopping** on an inner stratified validation split of the training data (best epoch kept).
* **Seed ensemble** (``n_seeds``): probabilities averaged over independently initialised networks.
* Variable lengths: optional ``lengths`` (valid steps per patient); the loss ignores padded steps and
  the risk is read at the last valid step (held constant after it).
* **Per-hour targets** (the online task): ``y`` of shape ``(n_patients, n_timesteps)`` with a 0/1 label
  at every scored hour and NaN elsewhere; the loss is the mean log-loss over labelled hours, and a
  patient's length is its last labelled hour. Batches are **bucketed by length** (patients of similar
  length together, each batch cut to its longest member), so long stays cost their own length and
  short ones are not padded to the longest stay of the cohort.
* **Batches come from the array**: every training, validation and prediction batch is copied out of
  ``X`` (an ndarray, or a read-only memory map of out-of-core features) on its own, so no tensor of
  all patients is ever built and a cohort larger than memory trains from disk.

**Parameters, the scikit-learn way.** scikit-learn reads an estimator's parameters from the signature of its
``__init__`` (``get_params``, ``clone``, ``set_params``, ``repr``). A subclass's ``__init__`` names only its
own parameters and passes the shared ones on (``**shared``); :meth:`TorchSequenceClassifier.__init_subclass__`
then gives that ``__init__`` the full signature (its own parameters, then the shared ones, keyword-only, with
their defaults), so every parameter is still an explicit, introspectable keyword argument.
"""
from __future__ import annotations

import copy
import inspect
import json
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted
from torch import nn

from core.exceptions import InternalError
from core.models.base import check_sequences, check_target
from core.runs.export import jsonable
from core.training.threads import limit_threads

__all__ = ["TorchSequenceClassifier"]

#: below this many input numbers (patients x steps x channels) one thread is faster than two.
_SMALL_PROBLEM = 2_000_000
#: patients per forward pass when predicting or computing the validation loss of the stay task.
_EVAL_ROWS = 1024
#: parameters that are hooks of one fit, not settings of the model: never saved with it.
_NOT_SAVED = ("progress",)


def _threads_for(n_values: int) -> int | None:
    """One thread below ``_SMALL_PROBLEM`` input numbers (the second costs more than it gives there),
    else the rule of :mod:`core.training.threads` (``None``: the enclosing limit)."""
    return 1 if n_values < _SMALL_PROBLEM else None


def _inputs(X: np.ndarray, rows: np.ndarray, T_b: int, device: torch.device) -> torch.Tensor:
    """``X[rows, :T_b]`` as a tensor on ``device``: one batch copied out of ``X`` (ndarray or memmap)."""
    return torch.from_numpy(np.ascontiguousarray(X[rows, :T_b])).to(device)


@dataclass(frozen=True)
class _TrainData:
    """What one fit reads: ``X`` stays a numpy array (batches are copied out of it), targets and lengths
    are on the device (small), ``lengths`` also on the CPU (batching, each batch's longest length)."""

    X: np.ndarray
    y: torch.Tensor
    L: torch.Tensor
    L_cpu: torch.Tensor
    device: torch.device

    def inputs(self, rows: torch.Tensor, T_b: int) -> torch.Tensor:
        return _inputs(self.X, rows.numpy(), T_b, self.device)


def _full_signature(init, parent_init) -> inspect.Signature:
    """``init``'s signature with its ``**shared`` replaced by ``parent_init``'s parameters (keyword-only)."""
    own = inspect.signature(init).parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in own):
        return inspect.signature(init)
    kept = [p for p in own if p.kind is not p.VAR_KEYWORD]
    names = {p.name for p in kept}
    for p in list(inspect.signature(parent_init).parameters.values())[1:]:      # [0] is self
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            raise InternalError(f"{parent_init.__qualname__} takes {p}: the shared parameters must be named "
                                "keyword arguments, or scikit-learn cannot read them.")
        if p.name in names:
            raise InternalError(f"{init.__qualname__} declares {p.name!r}, a parameter it already inherits.")
        kept.append(p.replace(kind=p.KEYWORD_ONLY))
    return inspect.Signature(kept)


class TorchSequenceClassifier(ClassifierMixin, BaseEstimator, metaclass=ABCMeta):
    """Shared base of the torch classifiers of ``X_seq`` ``(n_patients, n_timesteps, n_features)``.

    A subclass declares its own parameters (``__init__(self, own=..., **shared)`` calling
    ``super().__init__(**shared)``), checks them in ``_check_params`` (then calls this one) and builds one
    network in ``_new_net``: a ``torch.nn.Module`` mapping ``(n, T, C)`` to one logit per step ``(n, T)``.

    Parameters
    ----------
    hidden_size : int
    dropout : float
    max_epochs : int
    batch_size : int
    lr : float
        Adam learning rate.
    weight_decay : float
    patience : int
        Epochs without validation improvement before stopping.
    validation_fraction : float
        Share of the training patients held out (stratified) for early stopping.
    replication_weight : float in [0, 1]
        Weight of the per-step loss (target replication) against the final-step loss.
    pooling : {"none", "max"}
        ``"max"`` also feeds the running (causal) maximum of the hidden states to the output layer.
    n_seeds : int
        Networks in the seed ensemble (probabilities averaged).
    device : {"auto", "cpu", "cuda"}
        ``"auto"`` uses CUDA when ``torch.cuda.is_available()``.
    random_state : int, optional
    stop_on : {"loss", "auroc", "none"}
        Early-stopping criterion on the inner validation patients: log-loss, or AUROC (of the final
        step, or of every labelled hour with per-hour targets). AUROC suits rare positives, where
        the loss keeps falling by calibrating the base rate while the ranking no longer improves.
        ``"none"``: no inner split and no early stopping; ``max_epochs`` epochs on every training patient.
    pos_weight : float
        Weight of positive labels in the loss (1 = plain log-loss). Predicted risks are corrected for it
        (:attr:`logit_shift`), so they stay calibrated.
    progress : callable(message: str, fraction: float), optional
        A callback run after every epoch (fraction of the maximum epochs over all seeds), so every model
        is fitted the same way, ``fit(X, y)``; it is not saved with the model.
    bucket_batches : int
        Per-hour targets: batches per pool of similar-length patients (0 = random batches, each still cut
        to its longest member). Pools make long stays cheap; random batches weight every hour alike.

    Attributes
    ----------
    classes_, n_features_in_, n_timesteps_in_, module_ (nn.ModuleList, one net per seed),
    history_ (list of dicts per seed: epoch losses and the best epoch)
    """

    #: parameters earlier versions saved for a subclass that it no longer takes, with the only values they could
    #: hold there; :meth:`upgrade_meta` drops them from an old file, so runs saved before still load.
    RETIRED_PARAMS: dict[str, tuple] = {}

    def __init__(self, hidden_size=64, dropout=0.2, max_epochs=30, batch_size=64, lr=3e-3, weight_decay=1e-4,
                 patience=5, validation_fraction=0.15, replication_weight=0.5, pooling="none", n_seeds=1,
                 device="auto", random_state=None, stop_on="loss", pos_weight=1.0, progress=None,
                 bucket_batches=20):
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.replication_weight = replication_weight
        self.pooling = pooling
        self.n_seeds = n_seeds
        self.device = device
        self.random_state = random_state
        self.stop_on = stop_on
        self.pos_weight = pos_weight
        self.progress = progress
        self.bucket_batches = bucket_batches

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):          # scikit-learn reads every parameter from this signature
            cls.__init__.__signature__ = _full_signature(cls.__init__, cls.__mro__[1].__init__)

    # -- what a subclass provides -----------------------------------------------------------
    @abstractmethod
    def _new_net(self) -> nn.Module:
        """One network for ``n_features_in_`` channels: ``(n, T, C)`` -> logits ``(n, T)``."""

    @abstractmethod
    def _progress_name(self) -> str:
        """How the per-epoch progress messages name the network (``"gru seed 1/2 epoch 3: ..."``)."""

    # -- helpers ----------------------------------------------------------------------------
    def _check_params(self) -> None:
        """Check the shared parameters (a subclass checks its own, then calls this)."""
        name = type(self).__name__
        if self.pooling not in ("none", "max"):
            raise ValueError(f"{name}.pooling must be 'none' or 'max'; got {self.pooling!r}.")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"{name}.device must be 'auto', 'cpu' or 'cuda'; got {self.device!r}.")
        for key in ("hidden_size", "max_epochs", "batch_size", "n_seeds"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{name}.{key} must be >= 1; got {getattr(self, key)!r}.")
        if self.stop_on not in ("loss", "auroc", "none"):
            raise ValueError(f"{name}.stop_on must be 'loss', 'auroc' or 'none'; got {self.stop_on!r}.")
        if not float(self.pos_weight) > 0:
            raise ValueError(f"{name}.pos_weight must be > 0; got {self.pos_weight!r}.")
        if not 0 <= self.replication_weight <= 1:
            raise ValueError(f"{name}.replication_weight must be in [0, 1]; got {self.replication_weight!r}.")

    def _device(self) -> torch.device:
        if self.device == "cuda" or (self.device == "auto" and torch.cuda.is_available()):
            return torch.device("cuda")
        return torch.device("cpu")

    @staticmethod
    def _lengths(lengths, n: int, T: int) -> np.ndarray:
        if lengths is None:
            return np.full(n, T, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.shape != (n,) or lengths.min(initial=1) < 1 or lengths.max(initial=1) > T:
            raise ValueError(f"lengths must be 1-D with one value in [1, {T}] per patient ({n}); got shape "
                             f"{lengths.shape}. Use FeatureSet.lengths.")
        return lengths
    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, y, *, lengths=None):
        """Train ``n_seeds`` networks with early stopping.

        Parameters
        ----------
        X : array of shape (n_patients, n_timesteps, n_features)
        y : array of shape (n_patients,), two classes; or (n_patients, n_timesteps) of 0/1 with NaN
            where a step has no label (one label per hour: the online task)
        lengths : array of shape (n_patients,), optional
            Valid steps per patient (default: all).

        Returns
        -------
        self
        """
        self._check_params()
        X = check_sequences(X)
        with limit_threads(_threads_for(X.size)):
            return self._fit(X, y, lengths, self.progress)

    def _fit(self, X, y, lengths, progress):
        n, T, C = X.shape
        y = np.asarray(y)
        if y.ndim == 2:
            y_idx, lengths, strata = self._step_targets(y, n, T)
            self.classes_ = np.array([0, 1])
        else:
            self.classes_, y_idx = check_target(y, n)
            lengths = self._lengths(lengths, n, T)
            strata = y_idx
        self.n_features_in_ = C
        self.n_timesteps_in_ = T
        seed = 0 if self.random_state is None else int(self.random_state)
        idx = np.arange(n)
        counts = np.bincount(strata, minlength=2)
        can_stratify = counts.min() >= 2 and int(round(n * self.validation_fraction)) >= 2
        if self.stop_on == "none":       # a fixed number of epochs on every training patient
            tr, va = idx, idx[:0]
        elif self.validation_fraction > 0 and can_stratify and n >= 10:
            tr, va = train_test_split(idx, test_size=self.validation_fraction, stratify=strata, random_state=seed)
        else:  # too few patients for an inner split: train on all, stop on training loss
            tr, va = idx, idx
        dev = self._device()
        L_cpu = torch.from_numpy(lengths)
        data = _TrainData(X, torch.from_numpy(np.asarray(y_idx, dtype=np.float32)).to(dev), L_cpu.to(dev), L_cpu,
                          dev)
        nets, self.history_ = [], []
        total = int(self.n_seeds) * int(self.max_epochs)
        for s in range(int(self.n_seeds)):
            torch.manual_seed(seed + 1000 * s)
            net = self._new_net().to(dev)
            hist = self._train_one(net, data, tr, va, seed + 1000 * s, progress, s, total)
            nets.append(net.cpu().eval())
            self.history_.append(hist)
        self.module_ = nn.ModuleList(nets)
        return self

    @staticmethod
    def _step_targets(y: np.ndarray, n: int, T: int):
        """Check per-step targets; return them (NaN -> -1), lengths (last labelled step + 1) and strata."""
        if y.shape != (n, T):
            raise ValueError(f"Per-hour targets must have shape (n_patients, n_timesteps) = ({n}, {T}); got "
                             f"{y.shape}. Use FeatureSet.step_targets(y_units).")
        y = y.astype(np.float32)
        labelled = np.isfinite(y)
        if not np.isin(y[labelled], (0.0, 1.0)).all():
            raise ValueError("Per-hour targets must be 0, 1 or NaN (no label at that step).")
        if not labelled.any(axis=1).all():
            raise ValueError(f"{int((~labelled.any(axis=1)).sum())} patient(s) have no labelled step; pass only "
                             "patients with at least one labelled hour.")
        if len(np.unique(y[labelled])) < 2:
            raise ValueError("Per-hour targets hold one class only; the training patients need both 0 and 1 hours.")
        lengths = T - np.argmax(labelled[:, ::-1], axis=1)
        return np.where(labelled, y, -1.0), lengths.astype(np.int64), (y == 1).any(axis=1).astype(int)

    def _pos_weight(self, logits: torch.Tensor) -> torch.Tensor | None:
        w = float(self.pos_weight)
        return None if w == 1.0 else torch.tensor(w, dtype=logits.dtype, device=logits.device)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor, L: torch.Tensor, hours: float | None = None) -> torch.Tensor:
        """The training loss of one batch. Per-hour labels: the summed log-loss of the labelled hours divided
        by ``hours`` (the mean labelled hours per batch of the epoch), so every hour weighs the same whether
        it sits in a batch of short or of long stays; without ``hours``, the batch's mean."""
        if y.ndim == 2:
            y = y[:, :logits.shape[1]]
            labelled = y >= 0
            bce = nn.functional.binary_cross_entropy_with_logits(logits, y.clamp(min=0), reduction="none",
                                                                 pos_weight=self._pos_weight(logits))
            return (bce * labelled).sum() / (hours if hours else labelled.sum().clamp(min=1))
        T = logits.shape[1]
        valid = (torch.arange(T, device=logits.device)[None, :] < L[:, None]).float()
        bce = nn.functional.binary_cross_entropy_with_logits(logits, y[:, None].expand_as(logits),
                                                             reduction="none", pos_weight=self._pos_weight(logits))
        per_step = (bce * valid).sum(1) / valid.sum(1)
        final = bce.gather(1, (L - 1)[:, None]).squeeze(1)
        a = float(self.replication_weight)
        return (a * per_step + (1 - a) * final).mean()

    def _train_one(self, net, data: _TrainData, tr, va, seed, progress, s, total) -> dict:
        opt = torch.optim.Adam(net.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay))
        gen = torch.Generator().manual_seed(seed)
        tr_t = torch.from_numpy(tr)
        best, best_state, best_epoch, bad = np.inf, None, 0, 0
        hist = {"train_loss": [], "val_loss": []}
        bs = int(self.batch_size)
        bucket = data.y.ndim == 2            # per-hour targets: batches of similar length, cut to their longest
        # Per-hour labels in length buckets: each batch's summed loss is divided by the mean labelled hours
        # per batch, so an hour of a short stay weighs what an hour of a long one does (as in random batches).
        hours = float((data.y[torch.from_numpy(tr).to(data.device)] >= 0).sum()) / max(1, -(-len(tr) // bs)) \
            if bucket else None
        for epoch in range(int(self.max_epochs)):
            net.train()
            perm = tr_t[torch.randperm(len(tr_t), generator=gen)]
            tot = 0.0
            for b in self._batches(perm, data.L_cpu, bs, bucket, gen, int(self.bucket_batches)):
                T_b = int(data.L_cpu[b].max()) if bucket else data.X.shape[1]
                x_b = data.inputs(b, T_b)
                b = b.to(data.device)
                opt.zero_grad()
                loss = self._loss(net(x_b), data.y[b], data.L[b], hours)
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
                tot += loss.item() * len(b)
            net.eval()
            hist["train_loss"].append(tot / len(tr))
            if not len(va):              # stop_on="none": every epoch runs, the last one is kept
                hist["val_loss"].append(None)
                best_epoch, said = epoch, f"train loss {hist['train_loss'][-1]:.4f}"
            else:
                with torch.no_grad():
                    vloss = self._validation_loss(net, data, torch.from_numpy(va), bucket)
                hist["val_loss"].append(vloss)
                if vloss < best - 1e-4:
                    best, best_state, best_epoch, bad = vloss, copy.deepcopy(net.state_dict()), epoch, 0
                else:
                    bad += 1
                said = (f"validation AUROC {-vloss:.4f}" if self.stop_on == "auroc"   # kept negated: lower is better
                        else f"validation loss {vloss:.4f}")
            if progress is not None:
                progress(f"{self._progress_name()} seed {s + 1}/{self.n_seeds} epoch {epoch + 1}: {said}",
                         min(1.0, (s * int(self.max_epochs) + epoch + 1) / total))
            if bad >= int(self.patience):
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        hist["best_epoch"] = best_epoch
        hist["epochs_run"] = len(hist["val_loss"])
        return hist

    @staticmethod
    def _batches(perm: torch.Tensor, L: torch.Tensor, bs: int, bucket: bool, gen: torch.Generator,
                 pool_batches: int = 20):
        """Mini-batches of ``perm``; with ``bucket``, patients of similar length share a batch.

        Bucketing: the shuffled order is cut into pools of 20 batches, each pool sorted by length and
        cut into batches, and the batches shuffled again, so every epoch still sees a random order.
        """
        if not bucket or pool_batches < 1:
            return [perm[i:i + bs] for i in range(0, len(perm), bs)]
        out = []
        pool = bs * pool_batches
        for i in range(0, len(perm), pool):
            chunk = perm[i:i + pool]
            chunk = chunk[torch.argsort(L[chunk], stable=True)]
            out += [chunk[j:j + bs] for j in range(0, len(chunk), bs)]
        order = torch.randperm(len(out), generator=gen)
        return [out[k] for k in order]

    def _validation_loss(self, net, data: _TrainData, va: torch.Tensor, bucket: bool) -> float:
        """Early-stopping criterion, lower is better: log-loss, or minus AUROC with ``stop_on="auroc"``.

        Stay task: the final step's prediction (``_EVAL_ROWS`` patients per pass); per-hour targets:
        every labelled hour (pooled).
        """
        if not bucket:
            finals = []
            for i in range(0, len(va), _EVAL_ROWS):
                rows = va[i:i + _EVAL_ROWS]
                logits = net(data.inputs(rows, data.X.shape[1]))
                finals.append(logits.gather(1, (data.L[rows.to(data.device)] - 1)[:, None]).squeeze(1))
            y, score = data.y[va.to(data.device)], torch.cat(finals)
        else:
            va = va[torch.argsort(data.L_cpu[va], stable=True)]
            ys, scores = [], []
            for i in range(0, len(va), 256):
                rows = va[i:i + 256]
                T_b = int(data.L_cpu[rows].max())
                vb = rows.to(data.device)
                y_b = data.y[vb, :T_b]
                labelled = y_b >= 0
                ys.append(y_b[labelled])
                scores.append(net(data.inputs(rows, T_b))[labelled])
            y, score = torch.cat(ys), torch.cat(scores)
        if self.stop_on == "auroc" and 0 < float(y.sum()) < len(y):
            from sklearn.metrics import roc_auc_score
            return -float(roc_auc_score(y.cpu().numpy(), score.cpu().numpy()))
        return float(nn.functional.binary_cross_entropy_with_logits(score, y))

    # -- persistence (torch state_dict + JSON; loaded with weights_only=True, never unpickled) ----------
    def save(self, folder, name: str) -> list[str]:
        """Write ``folder/<name>.pt`` (the networks' ``state_dict``) and ``folder/<name>.json`` (class,
        parameters, fitted attributes, history); the ``progress`` callback is not saved.

        Returns
        -------
        list of str
            The names of the files written: ``["<name>.pt", "<name>.json"]``.
        """
        check_is_fitted(self, "module_")
        folder = Path(folder)
        torch.save(self.module_.state_dict(), folder / f"{name}.pt")
        params = {k: v for k, v in self.get_params().items() if k not in _NOT_SAVED}
        meta = {"class": type(self).__name__, "params": params, "classes": self.classes_.tolist(),
                "n_features_in": int(self.n_features_in_), "n_timesteps_in": int(self.n_timesteps_in_),
                "history": self.history_}
        (folder / f"{name}.json").write_text(json.dumps(jsonable(meta), indent=2, allow_nan=False))
        return [f"{name}.pt", f"{name}.json"]

    @classmethod
    def upgrade_meta(cls, meta):
        """``meta`` (a parsed, not yet checked ``<name>.json``) as this version writes it: the
        :data:`RETIRED_PARAMS` an earlier version saved are dropped where they hold the values they could
        hold; anything else is left for the file's checks (:func:`core.runs.runfiles.check_recurrent_meta`)."""
        params = meta.get("params") if isinstance(meta, dict) else None
        if not isinstance(params, dict) or not cls.RETIRED_PARAMS:
            return meta
        kept = {k: v for k, v in params.items()
                if not any(type(v) is type(a) and v == a for a in cls.RETIRED_PARAMS.get(k, ()))}
        return {**meta, "params": kept}

    @classmethod
    def load(cls, folder, name: str, meta: dict) -> "TorchSequenceClassifier":
        """Rebuild a model written by :meth:`save` from its ``meta`` (the parsed JSON) and its weights.

        Raises
        ------
        ValueError, OSError, RuntimeError
            Unknown parameters, a missing file or weights that do not fit (callers turn them into RunError).
        """
        model = cls(**meta["params"])
        model.classes_ = np.asarray(meta["classes"])
        model.n_features_in_ = int(meta["n_features_in"])
        model.n_timesteps_in_ = int(meta["n_timesteps_in"])
        model.history_ = meta.get("history", [])
        state = torch.load(Path(folder) / f"{name}.pt", map_location="cpu", weights_only=True)
        model.module_ = nn.ModuleList([model._new_net() for _ in range(int(model.n_seeds))])
        model.module_.load_state_dict(state)
        model.module_.eval()
        return model

    @property
    def logit_shift(self) -> float:
        """Added to every output logit: ``-log(pos_weight)``, so up-weighted training still gives calibrated risks.

        With positives weighted ``w`` in the log-loss, the best logit is the true log-odds plus ``log(w)``
        (the prior shift of training on data with every positive repeated ``w`` times); subtracting it
        undoes the shift and leaves the ranking (AUROC) unchanged.
        """
        return -float(np.log(float(self.pos_weight)))

    def refit_params(self) -> dict:
        """Parameters for refitting on training + validation patients without an inner split.

        Early stopping has already chosen the number of epochs: the refit trains for the median best
        epoch (+1) of the seeds, on all the patients it is given, with no patience-based stop.
        """
        check_is_fitted(self, "module_")
        epochs = int(np.median([h["best_epoch"] for h in self.history_])) + 1
        return {"max_epochs": epochs, "patience": epochs, "validation_fraction": 0.0}

    # -- predicting -------------------------------------------------------------------------
    def _step_proba(self, X, lengths) -> np.ndarray:
        check_is_fitted(self, "module_")
        X = check_sequences(X, n_features=self.n_features_in_)
        n, T, _ = X.shape
        lengths = self._lengths(lengths, n, T)
        out = np.zeros((n, T), dtype=np.float64)
        # Patients in order of length, each chunk cut to its longest member: the nets are causal, so the
        # risk at a step does not depend on the (padding) steps after it. Each chunk is copied out of X
        # on its own (X may be a memory map larger than memory).
        order = np.argsort(lengths, kind="stable")
        cpu = torch.device("cpu")
        with torch.no_grad(), limit_threads(_threads_for(X.size)):
            for net in self.module_:
                net.eval()
                for i in range(0, n, _EVAL_ROWS):
                    rows = order[i:i + _EVAL_ROWS]
                    T_b = int(lengths[rows].max())
                    logits = net(_inputs(X, rows, T_b, cpu))
                    out[rows, :T_b] += torch.sigmoid(logits + self.logit_shift).double().numpy()
        out /= len(self.module_)
        # After the last valid step nothing new is known: hold the risk constant.
        steps = np.arange(T)[None, :]
        last = np.take_along_axis(out, (lengths - 1)[:, None], axis=1)
        return np.where(steps < lengths[:, None], out, last)

    def predict_proba_over_time(self, X, lengths=None) -> np.ndarray:
        """Risk of the positive class after every step.

        Returns
        -------
        ndarray of shape (n_patients, n_timesteps)
        """
        return self._step_proba(X, lengths)

    def predict_proba(self, X, lengths=None) -> np.ndarray:
        """Class probabilities at the last valid step, shape ``(n_patients, 2)`` in ``classes_`` order."""
        p = self._step_proba(X, lengths)[:, -1]
        return np.column_stack([1.0 - p, p])

    def predict(self, X, lengths=None) -> np.ndarray:
        return self.classes_[self.predict_proba(X, lengths).argmax(axis=1)]

