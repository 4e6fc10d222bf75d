"""``python -m core users add|remove|list NAME --file F``: the built-in user list (see :mod:`core.users`).

The password is read from standard input (one line; asked twice, without echo, on a terminal), never
from the command line, where it would stay in the shell history and the process list.
"""
from __future__ import annotations

import argparse
import getpass
import sys

from core.exceptions import CoreError
from core.users import USERS_FILE_ENV, add_user, read_users, remove_user

__all__ = ["add_parser", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("users", help="add, remove or list the app's users (login with a built-in user list)",
                       description="Manage the users file the app reads when CHRONOSCOPE_USERS_FILE points at it. "
                                   "Passwords are stored as salted scrypt hashes only.")
    p.add_argument("action", choices=["add", "remove", "list"])
    p.add_argument("name", nargs="?", help="user name (add, remove)")
    p.add_argument("--file", required=True, help=f"the users file (the app reads ${USERS_FILE_ENV})")
    return p


def _password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            raise CoreError("The two passwords differ; nothing was changed.")
        return first
    line = sys.stdin.readline()
    if not line:
        raise CoreError("No password on standard input. Example: echo 'a long passphrase' | "
                        "python -m core users add alice --file users.toml")
    return line.rstrip("\r\n")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        for name in sorted(read_users(args.file)):
            print(name)
        return 0
    if not args.name:
        raise CoreError(f"Give the user name: python -m core users {args.action} NAME --file {args.file}")
    if args.action == "remove":
        remove_user(args.file, args.name)
        print(f"Removed {args.name} from {args.file}.")
        return 0
    new = add_user(args.file, args.name, _password())
    print(f"{'Added' if new else 'Changed the password of'} {args.name} in {args.file}. Start the app with "
          f"{USERS_FILE_ENV}={args.file} to require a login.")
    return 0
