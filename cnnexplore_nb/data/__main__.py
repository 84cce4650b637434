"""``python -m cnnexplore_nb.data [--root DIR] [--list] [NAME ...]``: fetch data ahead of time.

Errors are one message on stderr, without a traceback: an unknown name exits with status 2
(a usage error, as argparse's own), a download or a check that fails with status 1, an
interruption (Ctrl-C) with 130.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .fetch import DATASETS, ENV_DATA, fetch, list_datasets

PROG = "python -m cnnexplore_nb.data"


def _error(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch the named datasets (or list the registry); the exit status of the command."""
    import argparse

    from .._checks import unknown_name_message

    parser = argparse.ArgumentParser(
        prog=PROG, description="Fetch the documents' datasets ahead of time, or list them."
    )
    parser.add_argument("names", nargs="*", help=f"registered names: {', '.join(DATASETS)}")
    parser.add_argument(
        "--root", default=None, help=f"data folder (default ${ENV_DATA} or the cache)"
    )
    parser.add_argument("--list", action="store_true", help="list the registry and exit")
    args = parser.parse_args(argv)
    if args.list or not args.names:
        table = list_datasets(root=args.root)
        print(table[["name", "kind", "size_mb", "present", "path"]].to_string(index=False))
        return 0
    unknown = [name for name in args.names if name not in DATASETS]
    if unknown:  # before any download
        return _error(unknown_name_message("dataset", unknown[0], sorted(DATASETS)), 2)
    for name in args.names:
        try:
            path = fetch(name, root=args.root)
        except KeyboardInterrupt:
            return _error(f"interrupted while fetching {name!r}", 130)
        except (OSError, ValueError) as exc:  # FetchError, IntegrityError, ArchiveError...
            return _error(str(exc), 1)
        print(f"{name}: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
