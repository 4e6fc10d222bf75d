"""A built-in user list for one team: names and salted, slow password hashes in a TOML file.

The file (``CHRONOSCOPE_USERS_FILE``) looks like::

    # Chronoscope users: python -m core users add NAME --file THIS_FILE
    [users.alice]
    hash = "scrypt$16384$8$1$<salt, base64>$<key, base64>"

Passwords are never stored: only an scrypt hash (``hashlib.scrypt``, N = 2^14, r = 8, p = 1, a
16-byte random salt, 32-byte key; memory-hard, about 50 ms per check), compared in constant time.
A name that is not in the file is checked against a dummy hash, so a wrong name and a wrong
password take the same time and give the same answer.

:class:`LoginThrottle` slows down repeated failures: after :data:`FREE_ATTEMPTS` failures for one
name, each further attempt must wait 2, 4, 8 ... seconds (at most :data:`MAX_WAIT_S`). An attempt is
counted when it starts (:meth:`LoginThrottle.attempt`, one locked step), so simultaneous attempts cannot
all slip through before the first failure is recorded; :func:`check_login` is the whole login step.

:func:`user_hash` reads the file again only when it changed (its size, time or inode), so the app can ask
on every script run whether a logged-in user is still in it, with the same password.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
import tomllib
from pathlib import Path

from core.exceptions import CoreError

__all__ = ["add_user", "remove_user", "read_users", "verify_password", "hash_password", "check_name", "check_login",
           "user_hash", "LoginThrottle", "FREE_ATTEMPTS", "MAX_WAIT_S", "USERS_FILE_ENV"]

USERS_FILE_ENV = "CHRONOSCOPE_USERS_FILE"
_N, _R, _P, _KEY = 2 ** 14, 8, 1, 32
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_PASSWORD = 8
FREE_ATTEMPTS = 3
MAX_WAIT_S = 60.0


def check_name(name: str) -> str:
    """``name`` if it is a valid user name (letters, digits, ``_ . -``, at most 64, starting with a letter or
    digit); else CoreError saying so. Names are also folder names, so nothing else is allowed."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise CoreError(f"User name {name!r} is not allowed: use 1 to 64 letters, digits, '_', '.' or '-', "
                        "starting with a letter or digit (e.g. alice or j.smith).")
    return name


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$key`` for ``password`` (a fresh random salt unless given)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_KEY)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(key).decode()}"


_DUMMY = hash_password("not a password", salt=b"\0" * 16)


def _matches(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, key = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(base64.b64decode(key)))
        return hmac.compare_digest(got, base64.b64decode(key))
    except (ValueError, TypeError):
        return False


def read_users(path: str | Path) -> dict[str, str]:
    """``{name: hash}`` of the users file (empty when the file does not exist). CoreError for a broken file."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise CoreError(f"The users file {path} cannot be read ({err}). Recreate it with "
                        "'python -m core users add NAME --file FILE'.") from None
    users = data.get("users", {})
    return {str(k): str(v.get("hash", "")) for k, v in users.items() if isinstance(v, dict)}


def _write(path: Path, users: dict[str, str]) -> None:
    lines = ["# Chronoscope users: python -m core users add NAME --file THIS_FILE (passwords are scrypt hashes)", ""]
    for name in sorted(users):
        lines += [f"[users.{check_name(name)}]", f'hash = "{users[name]}"', ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)       # owner-only from the start
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)


def add_user(path: str | Path, name: str, password: str) -> bool:
    """Add ``name`` (or set a new password); returns True when the user is new."""
    check_name(name)
    if len(password) < MIN_PASSWORD:
        raise CoreError(f"The password must have at least {MIN_PASSWORD} characters.")
    users = read_users(path)
    new = name not in users
    users[name] = hash_password(password)
    _write(Path(path), users)
    return new


def remove_user(path: str | Path, name: str) -> None:
    users = read_users(path)
    if name not in users:
        raise CoreError(f"There is no user {name!r} in {path}.")
    del users[name]
    _write(Path(path), users)


def verify_password(path: str | Path, name: str, password: str) -> bool:
    """Whether ``name`` / ``password`` is a user of the file. Same time and answer for a wrong name or password."""
    stored = read_users(path).get(name)
    ok = _matches(password, stored if stored is not None else _DUMMY)
    return ok and stored is not None


_users_cache: dict[str, tuple[tuple, dict[str, str]]] = {}
_users_lock = threading.Lock()


def user_hash(path: str | Path, name: str) -> str | None:
    """``name``'s stored hash in the users file (``None`` when it is not a user, or the file is missing).

    The file is read again only when its size, modification time or inode changed (``users add/remove`` replace
    it), so asking on every script run costs one ``stat``. CoreError for a broken file.
    """
    path = str(path)
    try:
        st = os.stat(path)
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    except FileNotFoundError:
        return None
    with _users_lock:
        cached = _users_cache.get(path)
    if cached is None or cached[0] != stamp:
        cached = (stamp, read_users(path))
        with _users_lock:
            _users_cache[path] = cached
    return cached[1].get(name)


class LoginThrottle:
    """Failed logins per name: :meth:`wait` is how long the next attempt must wait (0 while under
    :data:`FREE_ATTEMPTS` failures), doubling with every further failure; a success clears it.

    :meth:`attempt` checks the wait and counts the attempt as a failure in one locked step (a success clears
    it afterwards), so 8 simultaneous attempts for one name get exactly :data:`FREE_ATTEMPTS` checks.
    Shared by every session of the server (one object), thread-safe.
    """

    def __init__(self, free: int = FREE_ATTEMPTS, max_wait: float = MAX_WAIT_S, clock=time.monotonic) -> None:
        self.free, self.max_wait, self.clock = free, max_wait, clock
        self._fails: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def _wait(self, key: str) -> float:
        n, last = self._fails.get(key, (0, 0.0))
        if n < self.free:
            return 0.0
        delay = min(2.0 ** (n - self.free + 1), self.max_wait)
        return max(0.0, last + delay - self.clock())

    def wait(self, name: str) -> float:
        """Seconds the next attempt for ``name`` must wait (0: it may go ahead); counts nothing."""
        with self._lock:
            return self._wait(name.lower())

    def attempt(self, name: str) -> float:
        """0 when an attempt for ``name`` may go ahead now, and it is counted (as a failure until
        :meth:`succeeded`); else the seconds to wait, and nothing is counted."""
        key = name.lower()
        with self._lock:
            wait = self._wait(key)
            if wait <= 0:
                n, _ = self._fails.get(key, (0, 0.0))
                self._fails[key] = (n + 1, self.clock())
            return wait

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._fails.pop(name.lower(), None)


def check_login(path: str | Path, name: str, password: str, throttle: LoginThrottle, *, patience: float = 3.0,
                sleep=time.sleep) -> tuple[bool, float]:
    """One login attempt: ``(True, 0)`` for a user of the file with that password; ``(False, 0)`` for a wrong
    name or password (same time, same answer); ``(False, seconds)`` when ``throttle`` refuses it unchecked.

    A throttled attempt is slowed down by up to ``patience`` seconds, then tried once more (so the 4th attempt
    waits its 2 s and goes ahead); the check and its reservation are one step (:meth:`LoginThrottle.attempt`).
    CoreError when the file cannot be read.
    """
    wait = throttle.attempt(name)
    if wait > 0:
        sleep(min(wait, patience))
        wait = throttle.attempt(name)
        if wait > 0:
            return False, wait
    if verify_password(path, name, password):
        throttle.succeeded(name)
        return True, 0.0
    return False, 0.0
