"""Where the independent fits of one analysis run: here, one after another, or side by side on Ray.

Every analysis (comparison, cross-validation, refit, time order, gate models) hands its fits to one
:class:`Backend` through :func:`core.protocol.run_protocols`:

* ``local`` (default) runs them in this process, one after another, with live progress (per epoch,
  per tree batch, and a heartbeat at least every 5 s: :mod:`core.models.staged`). Nothing needs to be started.
* ``ray`` submits every fit as a Ray task (each asks for as many CPUs as it uses threads) and
  gathers the results in submission order. The tasks' progress messages go to a small Ray actor (an
  inbox, no CPU) that this process empties every 0.25 s, so progress is as live as on the local
  backend, several fits at once. With no address it starts a private Ray instance on this machine;
  with ``address`` (or ``CHRONOSCOPE_RAY_ADDRESS``) it joins an existing cluster and ships the ``core``
  package to it.

Both call the same function with the same arguments and the same thread count
(:mod:`core.threads`), so the same seeds give the same numbers on both.
"""
from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from core.exceptions import CoreError
from core.threads import limit_threads, thread_count

__all__ = ["BACKENDS", "RAY_ADDRESS_ENV", "BackendConfig", "Backend", "LocalBackend", "RayBackend", "make_backend",
           "BackendError"]

BACKENDS = ("local", "ray")
#: address of an existing Ray cluster (``ray://head:10001`` or ``head:6379``; ``auto`` = the one on this node).
RAY_ADDRESS_ENV = "CHRONOSCOPE_RAY_ADDRESS"


class BackendError(CoreError):
    """The chosen backend cannot be used (Ray missing, cluster unreachable)."""


@dataclass(frozen=True)
class BackendConfig:
    """Which backend runs the fits.

    Parameters
    ----------
    name : {"local", "ray"}
    address : str, optional
        Ray only: an existing cluster. Default: ``$CHRONOSCOPE_RAY_ADDRESS``, else a private Ray
        instance started on this machine.
    num_cpus : int, optional
        Ray only, private instance: CPUs it may use (default: the machine's).
    threads : int, optional
        Threads per fit on both backends (default: :func:`core.threads.thread_count`).
    """

    name: str = "local"
    address: str | None = None
    num_cpus: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {self.name!r}. Example: --backend ray.")
        for k in ("num_cpus", "threads"):
            v = getattr(self, k)
            if v is not None and int(v) < 1:
                raise ValueError(f"BackendConfig.{k} must be >= 1; got {v!r}.")

    def resolved_address(self) -> str | None:
        return self.address or os.environ.get(RAY_ADDRESS_ENV) or None

    def describe(self) -> str:
        if self.name == "local":
            return "local (this process, one fit after another)"
        addr = self.resolved_address()
        return f"Ray cluster at {addr}" if addr else \
            f"Ray, private instance on this machine ({self.num_cpus or os.cpu_count()} CPUs)"


#: ``fn(item, progress, payload) -> result``; ``progress`` is ``None`` when nobody listens.
TaskFn = Callable


class Backend(abc.ABC):
    """Runs ``fn(item, progress, payloads[key])`` for every item and returns the results in order."""

    name = "local"
    #: whether fits of several requests should be submitted together (memory for speed).
    parallel = False

    def __init__(self, config: BackendConfig | None = None) -> None:
        self.config = config or BackendConfig(name=self.name)

    def threads(self) -> int:
        return int(self.config.threads or thread_count())

    @abc.abstractmethod
    def map(self, fn: TaskFn, items: Sequence, keys: Sequence, payloads: dict, *, labels: Sequence[str] | None = None,
            progress: Callable[[str, float], None] | None = None) -> list:
        """``[fn(item, progress, payloads[key]) for item, key in zip(items, keys)]``, wherever it runs."""


class LocalBackend(Backend):
    """In this process, one item after another (``progress(message, fraction)`` is live)."""

    name = "local"

    def map(self, fn, items, keys, payloads, *, labels=None, progress=None) -> list:
        n, threads, out = len(items), self.threads(), []
        for i, (item, key) in enumerate(zip(items, keys)):
            def sub(msg, frac, i=i):
                progress(msg, (i + min(max(frac, 0.0), 1.0)) / max(n, 1))
            with limit_threads(threads):
                out.append(fn(item, None if progress is None else sub, payloads[key]))
        return out


class _ProgressInbox:
    """A Ray actor holding the progress messages of running tasks until the driver takes them."""

    def __init__(self) -> None:
        self.items = []

    def push(self, index: int, message: str, fraction: float) -> None:
        self.items.append((index, message, fraction))

    def flush(self) -> None:
        """Nothing: a task waits on it, so its earlier pushes (same caller, run in order) are all in."""

    def drain(self) -> list:
        out, self.items = self.items, []
        return out


def _ray_call(fn, item, threads, payload, inbox=None, index=0):
    """A Ray task: the same call as the local backend, under the same thread limit; with ``inbox`` its
    ``progress(message, fraction)`` is sent there (without waiting), and every message is in before it returns."""
    progress = None
    if inbox is not None:
        def progress(message, fraction):
            inbox.push.remote(index, message, float(fraction))
    with limit_threads(threads):
        result = fn(item, progress, payload)
    if inbox is not None:
        import ray
        ray.get(inbox.flush.remote())
    return result


class RayBackend(Backend):
    """Every item is one Ray task asking for ``threads`` CPUs; payloads are put in the object store once."""

    name = "ray"
    parallel = True

    def start(self):
        """Start (or join) Ray now and return the ``ray`` module; :meth:`map` does it on first use."""
        return self._ray()

    def _ray(self):
        try:
            import ray
        except ImportError as err:      # an ordinary dependency; only a broken install lacks it
            raise BackendError("The Ray backend needs the 'ray' package: pip install -r requirements.txt, or use "
                               "the local backend (--backend local).") from err
        if ray.is_initialized():
            return ray
        address = self.config.resolved_address()
        root = str(Path(__file__).resolve().parent.parent)
        kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        import signal
        import threading
        main = threading.current_thread() is threading.main_thread()
        before = signal.getsignal(signal.SIGTERM) if main else None
        try:
            if address:                 # an existing cluster: ship the core package with the job
                import core
                ray.init(address=address, runtime_env={"py_modules": [core]}, **kwargs)
            else:                       # a private instance on this machine
                ray.init(num_cpus=self.config.num_cpus, runtime_env={"env_vars": {"PYTHONPATH": root}}, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
            raise BackendError(f"Could not start or reach {where}: {err}. Check the address (--address or "
                               f"{RAY_ADDRESS_ENV}, e.g. ray://head:10001) or use --backend local.") from err
        finally:
            if main and before is not None:   # Ray replaces SIGTERM's handler; a job's cancel needs its own back
                signal.signal(signal.SIGTERM, before)
        return ray

    def map(self, fn, items, keys, payloads, *, labels=None, progress=None) -> list:
        ray = self._ray()
        threads = self.threads()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        threads = max(1, min(threads, cpus))
        refs = {k: ray.put(v) for k, v in payloads.items()}
        task = ray.remote(_ray_call)
        inbox = None if progress is None else ray.remote(num_cpus=0)(_ProgressInbox).remote()
        futures = [task.options(num_cpus=threads).remote(fn, item, threads, refs[key], inbox, i)
                   for i, (item, key) in enumerate(zip(items, keys))]
        order = {f: i for i, f in enumerate(futures)}
        labels = list(labels) if labels is not None else [f"task {i + 1}" for i in range(len(items))]
        n = max(len(items), 1)
        fractions, finished = [0.0] * len(items), set()
        if progress is not None:
            progress(f"{len(items)} fits submitted to Ray ({threads} CPU each)", 0.0)
        pending = list(futures)
        try:
            while pending:               # short waits, so a cancel (SIGTERM -> Python handler) is seen at once
                ready, pending = ray.wait(pending, num_returns=1, timeout=0.25)
                if progress is None:
                    continue
                # a finished task's messages are all in the inbox (it flushed before returning): take them first
                for i, message, fraction in ray.get(inbox.drain.remote()):
                    if i not in finished:
                        fractions[i] = max(fractions[i], min(max(fraction, 0.0), 1.0))
                        progress(message, sum(fractions) / n)
                for f in ready:
                    i = order[f]
                    finished.add(i)
                    fractions[i] = 1.0
                    progress(f"{labels[i]}: done ({len(finished)}/{len(items)} fits)", sum(fractions) / n)
            return ray.get(futures)
        except BaseException:
            for f in futures:           # a cancelled or failed analysis leaves no tasks running
                ray.cancel(f, force=True)
            raise
        finally:
            if inbox is not None:
                ray.kill(inbox)


def make_backend(config: BackendConfig | str | None = None) -> Backend:
    """The backend for ``config`` (a :class:`BackendConfig` or a name; default local)."""
    if config is None:
        config = BackendConfig()
    elif isinstance(config, str):
        config = BackendConfig(name=config)
    return RayBackend(config) if config.name == "ray" else LocalBackend(config)
