"""cnnexplore_nb: look inside convolutional networks from a notebook.

The core verbs are importable from the package root and the subpackages are attributes of it
(``cnnexplore_nb.similarity``, ``cnnexplore_nb.prune``...). Everything is loaded on first
use: ``import cnnexplore_nb`` imports neither torch nor HoloViews, Bokeh or ipywidgets, and
``__init__.pyi`` lists the public names for editors and type checkers (scikit-image's
pattern, with ``lazy_loader``).
"""

import lazy_loader as _lazy

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
__all__ = [*__all__, "__version__"]
