"""cnnexplore_nb: look inside convolutional networks from a notebook.

The core verbs are importable from the package root and the subpackages are attributes of it
(``cnnexplore_nb.similarity``, ``cnnexplore_nb.prune``...). Everything is loaded on first
use: ``import cnnexplore_nb`` imports neither torch nor HoloViews, Bokeh or ipywidgets, and
``__init__.pyi`` lists the public names for editors and type checkers (scikit-image's
pattern, with ``lazy_loader``).
"""


def _refuse_own_folder_on_path() -> None:
    """ImportError if this package's folder is itself on ``sys.path`` (numpy does alike).

    There (``cd cnnexplore_nb; python``, or the folder in ``PYTHONPATH``) its subpackage
    ``inspect`` stands in for the standard library's ``inspect``, and torch's first
    ``import inspect`` fails half-way with a circular-import error.
    """
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        folder = os.path.abspath(entry or os.curdir)
        try:
            same = os.path.samefile(folder, here)
        except OSError:  # a zip file, a missing folder
            continue
        # or another copy of the package (a clone beside the installed one)
        if same or (
            os.path.basename(folder) == __name__
            and os.path.isfile(os.path.join(folder, "inspect", "__init__.py"))
        ):
            here_cwd = folder == os.path.abspath(os.curdir)
            how = "from the working directory" if here_cwd else "added e.g. by PYTHONPATH"
            raise ImportError(
                f"cannot import cnnexplore_nb with its package folder {folder!r} on sys.path "
                f"({how}): there its subpackage 'inspect' shadows the standard library's "
                "'inspect' module and breaks the import of torch (and others). "
                "Start Python from another folder (e.g. the repository root, one level up), "
                "or remove that folder from PYTHONPATH."
            )


_refuse_own_folder_on_path()
del _refuse_own_folder_on_path

import lazy_loader as _lazy  # noqa: E402 - after the guard

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
__all__ = [*__all__, "__version__"]
