"""Identical requests are answered once: a request key over the data, the settings and the code.

A *request* is what a computation depends on: the data fingerprint (:meth:`core.data.cohort.Cohort.fingerprint`),
the full configuration (models, preset, seed, feature / split / evaluation settings...), the library
versions and the source of the ``core`` package itself. Two requests with the same
:func:`request_key` give the same numbers (every seed is fixed; the Ray backend gives the local
numbers bit for bit), so the second one reuses the saved result instead of recomputing it:

* a training: the run folder whose ``config.json`` has the same ``request`` (:func:`core.runs.store.find_run`),
  in the app and with ``train --reuse`` in the CLI;
* a time-order analysis: ``timeorder.json`` with the same ``request`` (``timeorder --reuse``);
* every job of the app: a finished job of the server with the same key (:class:`core.service.jobs.JobManager`).

The key covers the code: after an upgrade of the libraries or a change to ``core``, nothing is reused.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

__all__ = ["request_key", "code_version"]


@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the ``core`` package's source files and of the libraries that compute results."""
    import numpy
    import pandas
    import sklearn
    import torch
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]          # the core package
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    for mod in (numpy, pandas, sklearn, torch):
        h.update(f"{mod.__name__}={mod.__version__};".encode())
    return h.hexdigest()[:16]


def _canonical(obj):
    """JSON-able, order-independent form of a config (tuples as lists, dataclasses as dicts, keys sorted)."""
    from dataclasses import asdict, is_dataclass
    if is_dataclass(obj) and not isinstance(obj, type):
        return _canonical(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, float) and obj.is_integer():
        return int(obj)                  # 48 and 48.0 are the same request
    if hasattr(obj, "item") and callable(obj.item):      # numpy scalars
        return _canonical(obj.item())
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def request_key(kind: str, fingerprint: str, config, scope: str = "") -> str:
    """The key of one request: ``kind`` ("train", "timeorder", ...), the data ``fingerprint``, ``config``
    (a dict or dataclass: everything the result depends on) and the code version.

    ``scope`` keeps otherwise identical requests apart (the user a result belongs to).

    Examples
    --------
    >>> request_key("train", "abc", {"seed": 0, "models": ["lr"]}) == request_key("train", "abc", {"models": ("lr",), "seed": 0})
    True
    >>> request_key("train", "abc", {"seed": 0}) == request_key("train", "abc", {"seed": 1})
    False
    """
    payload = json.dumps({"kind": kind, "data": fingerprint, "config": _canonical(config), "scope": scope,
                          "code": code_version()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:24]
