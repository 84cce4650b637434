"""``python -m cnnexplore_nb.notebook [names] --scale embedded``: run the notebooks."""

import sys

from .run import main

sys.exit(main())
