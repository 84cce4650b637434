"""``python -m cnnexplore_nb.data [--root DIR] [--list] [NAME ...]``: fetch data ahead of time."""

from __future__ import annotations

import sys

from .fetch import main

if __name__ == "__main__":
    sys.exit(main())
