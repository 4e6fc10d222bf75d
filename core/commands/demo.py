"""``python -m core demo``: write the synthetic demo cohort (events.parquet + outcomes.csv)."""
from __future__ import annotations

import argparse
from pathlib import Path

from core.data.demo import write_demo

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``demo`` sub-command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object returned by ``ArgumentParser.add_subparsers``.

    Returns
    -------
    argparse.ArgumentParser
        The ``demo`` parser (``--out``, ``--patients``, ``--seed``).
    """
    p = subparsers.add_parser(
        "demo", help="write the synthetic demo cohort (events.parquet, outcomes.csv)",
        description="Generate the synthetic ICU-like demo cohort whose outcome depends on time order "
                    "(see data/README.md) and write events.parquet and outcomes.csv.")
    p.add_argument("--out", type=Path, default=Path("data/demo"), metavar="DIR",
                   help="output folder (default: data/demo)")
    p.add_argument("--patients", type=int, default=2000, metavar="N",
                   help="number of patients (default: 2000)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default: 0)")
    return p


def run(args: argparse.Namespace) -> int:
    """Write the demo files and print their paths and sizes.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments with ``out``, ``patients`` and ``seed``.

    Returns
    -------
    int
        0 on success.
    """
    paths = write_demo(args.out, n_patients=args.patients, seed=args.seed)
    print(f"demo cohort: {args.patients} patients, seed {args.seed}")
    for name, path in paths.items():
        print(f"  wrote {name}: {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0
