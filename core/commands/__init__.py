"""CLI sub-commands. Each module defines ``add_parser(subparsers)`` and ``run(args) -> int``."""
