"""``python -m cnnexplore_nb.notebook [names] --scale embedded``: run the notebooks."""

import sys

from .run import main

if __name__ == "__main__":
    sys.exit(main())
