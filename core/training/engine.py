"""Where the independent fits of one analysis run: here, one after another, or side by side on Ray.

Every analysis (comparison, cross-validation, refit, time order, gate models) hands its fits to one
:class:`Backend` through :func:`core.training.protocol.run_protocols`:

* ``local`` (default) runs them in this process, one after another, with live progress (per epoch,
  per tree batch, and a heartbeat at least every 5 s: :mod:`core.models.staged`). Nothing needs to be started.
* ``ray`` submits every fit as a Ray task (each asks for as many CPUs as it uses threads) and
  gathers the results in submission order. The tasks' progress messages go to a small Ray actor (an
  inbox, no CPU) that this process empties every 0.25 s, so progress is as live as on the local
  backend, several fits at once. With no address it starts a private Ray instance on this machine,
  listening on 127.0.0.1 only; with ``address`` it joins an existing cluster and ships the ``core``
  package to it. Joining is bounded: nothing listening at the address is refused at once (a TCP probe),
  a cluster that does not answer within ``connect_timeout_s`` (20 s) is a :class:`BackendError`.

Both call the same function with the same arguments and the same thread count
(:mod:`core.training.threads`), so the same seeds give the same numbers on both.

**Who chooses.** The server's jobs run where the operator's environment says
(:func:`configured_backend`: ``CHRONOSCOPE_BACKEND``, ``CHRONOSCOPE_RAY_ADDRESS``, ``CHRONOSCOPE_RAY_CPUS``,
read here and nowhere else); nothing a user of the app types reaches it. The CLI is the operator's own
tool: its ``--backend`` / ``--address`` flags build a :class:`BackendConfig` directly.
"""
from __future__ import annotations

import abc
import ipaddress
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from core.exceptions import CoreError
from core.settings import SettingError, Settings, read_settings
from core.training.threads import limit_threads, thread_count

__all__ = ["BACKENDS", "BACKEND_ENV", "RAY_ADDRESS_ENV", "RAY_CPUS_ENV", "CONNECT_TIMEOUT_S", "BackendConfig",
           "Backend", "LocalBackend", "RayBackend", "make_backend", "configured_backend", "BackendError"]

BACKENDS = ("local", "ray")
#: the server's backend, ``local`` (default) or ``ray``: the operator's choice, never a user's.
BACKEND_ENV = Settings.backend.env
#: address of an existing Ray cluster (``ray://head:10001`` or ``head:6379``; ``auto`` = the one on this node).
RAY_ADDRESS_ENV = Settings.ray_address.env
#: CPUs of the private Ray instance (default: the machine's).
RAY_CPUS_ENV = Settings.ray_cpus.env
#: seconds a cluster has to answer before the job fails (ray.init itself waits minutes on a silent port).
CONNECT_TIMEOUT_S = 20.0


class BackendError(CoreError):
    """The chosen backend cannot be used (Ray missing, cluster unreachable, a wrong setting)."""


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
        Threads per fit on both backends (default: :func:`core.training.threads.thread_count`).
    connect_timeout_s : float
        Ray cluster only: seconds it has to answer before :class:`BackendError` (default 20).
    """

    name: str = "local"
    address: str | None = None
    num_cpus: int | None = None
    threads: int | None = None
    connect_timeout_s: float = CONNECT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {self.name!r}. Example: --backend ray.")
        for k in ("num_cpus", "threads"):
            v = getattr(self, k)
            if v is not None and int(v) < 1:
                raise ValueError(f"BackendConfig.{k} must be >= 1; got {v!r}.")
        if not 0 < float(self.connect_timeout_s) <= 600:
            raise ValueError(f"BackendConfig.connect_timeout_s must be in (0, 600] seconds; got "
                             f"{self.connect_timeout_s!r}. Example: BackendConfig('ray', connect_timeout_s=20).")

    def resolved_address(self) -> str | None:
        return self.address or read_settings().ray_address

    def describe(self, show_address: bool = True) -> str:
        """Where the fits run, in words (``show_address=False``: a cluster's address is left out)."""
        if self.name == "local":
            return "This server (one fit after another)"
        addr = self.resolved_address()
        if addr:
            return f"Ray cluster at {addr}" if show_address else "Ray cluster (set by the server's operator)"
        return f"Ray, private instance on this machine ({self.num_cpus or os.cpu_count()} CPUs, 127.0.0.1 only)"


def configured_backend() -> BackendConfig:
    """The backend of the server's jobs, from its environment (the operator's configuration).

    ``CHRONOSCOPE_BACKEND`` (``local``, the default, or ``ray``), ``CHRONOSCOPE_RAY_ADDRESS`` (a cluster to
    join; unset: a private Ray instance on this machine), ``CHRONOSCOPE_RAY_CPUS`` (CPUs of that instance).

    Raises
    ------
    BackendError
        A setting that is not valid, naming the variable and an example.
    """
    settings = read_settings()
    try:
        return BackendConfig(name=settings.backend, address=settings.ray_address, num_cpus=settings.ray_cpus)
    except SettingError as err:              # a bad backend setting says so as a BackendError, as it always has
        raise BackendError(str(err)) from None


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


def _probe(address: str, timeout: float) -> None:
    """BackendError at once when nothing accepts a TCP connection at ``address`` (``host:port`` or
    ``ray://host:port``); addresses without a port (``auto``) are left to Ray."""
    where = address.split("://", 1)[-1]
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=min(timeout, 5.0)):
            pass
    except OSError as err:
        raise BackendError(f"Could not reach the Ray cluster at {address!r}: nothing listens there ({err}). Check "
                           f"the address (--address or {RAY_ADDRESS_ENV}, e.g. head-node:6379 or "
                           "ray://head-node:10001) and that the cluster runs, or use the local backend.") from None


_RAY_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_ray_defaults: dict = {}


def _loopback_only(on: bool) -> None:
    """Whether the Ray session started next in this process stays on 127.0.0.1 (``on``: a private instance) or
    uses this machine's address (a cluster).

    Ray binds its servers (GCS, raylet, object manager, workers) to every interface unless its node address
    is the loopback, and ``ray.init(_node_ip_address="127.0.0.1")`` is rewritten to the machine's address. Its
    own switch for machines without clusters, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, keeps the loopback: it
    is read into ``ray_constants.ENABLE_RAY_CLUSTER`` when ray is imported and consulted for the whole session
    (ray 2.60; the driver reconnecting to its GCS uses it too), so both are set until the next start.
    :meth:`RayBackend._ray` checks the result, whatever a later Ray does.
    """
    from ray._private import ray_constants
    if not _ray_defaults:
        _ray_defaults.update(env=os.environ.get(_RAY_CLUSTER_ENV), flag=ray_constants.ENABLE_RAY_CLUSTER)
    env, flag = ("0", False) if on else (_ray_defaults["env"], _ray_defaults["flag"])
    ray_constants.ENABLE_RAY_CLUSTER = flag
    if env is None:
        os.environ.pop(_RAY_CLUSTER_ENV, None)
    else:
        os.environ[_RAY_CLUSTER_ENV] = env          # the Ray processes started now read it too


def _bounded(start: Callable[[], None], seconds: float) -> bool:
    """Run ``start()`` in a thread for at most ``seconds``; False when it is still running then (it is left
    behind as a daemon thread: the caller fails, and a job's worker process ends with it). Only for joining a
    cluster: a private instance started from a thread dies when that thread ends."""
    box: dict = {}

    def run() -> None:
        try:
            start()
        except BaseException as err:     # handed to the caller's thread, which raises it
            box["error"] = err
    thread = threading.Thread(target=run, name="chronoscope-ray-init", daemon=True)
    thread.start()
    thread.join(seconds)                 # a SIGTERM (cancel) still interrupts this wait at once
    if "error" in box:
        raise box["error"]
    return not thread.is_alive()


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
        timeout = float(self.config.connect_timeout_s)
        root = str(Path(__file__).resolve().parents[2])
        kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        where = f"the Ray cluster at {address!r}" if address else "a private Ray instance on this machine"

        def start() -> None:
            _loopback_only(not address)
            if address:                 # an existing cluster: ship the core package with the job
                import core
                ray.init(address=address, runtime_env={"py_modules": [core]}, **kwargs)
            else:                       # a private instance ("local": never one that RAY_ADDRESS points at)
                ray.init(address="local", num_cpus=self.config.num_cpus,
                         runtime_env={"env_vars": {"PYTHONPATH": root}}, **kwargs)
        import signal
        main = threading.current_thread() is threading.main_thread()
        before = signal.getsignal(signal.SIGTERM) if main else None
        try:
            if not address:
                start()                 # in this thread: Ray's processes die with the thread that started them
            else:                       # ray.init waits minutes on a silent port: probe, then bound the wait
                _probe(address, timeout)
                if not _bounded(start, timeout):
                    raise BackendError(f"The Ray cluster at {address!r} did not answer within {timeout:.0f} s "
                                       "(something listens there, but it is not a Ray cluster, it is too busy, or it "
                                       "refuses this server's Ray token: RAY_AUTH_MODE / RAY_AUTH_TOKEN). Check the "
                                       f"address (--address or {RAY_ADDRESS_ENV}, e.g. head-node:6379 or "
                                       "ray://head-node:10001) and that the cluster runs, or use the local backend.")
        except BackendError:
            raise
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise BackendError(f"Could not start or reach {where}: {err}. Check the address (--address or "
                               f"{RAY_ADDRESS_ENV}, e.g. head-node:6379) or use the local backend.") from err
        finally:
            if main and before is not None:   # Ray replaces SIGTERM's handler; a job's cancel needs its own back
                signal.signal(signal.SIGTERM, before)
        if not address:
            from ray.util import get_node_ip_address
            node = get_node_ip_address()
            if not ipaddress.ip_address(node).is_loopback:
                ray.shutdown()          # this Ray would listen on every interface: refuse rather than expose it
                raise BackendError(f"The private Ray instance did not stay on 127.0.0.1 (it took {node}); this "
                                   "version of Ray is not supported for it. Use the local backend, or a Ray cluster "
                                   "set up by the operator.")
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
