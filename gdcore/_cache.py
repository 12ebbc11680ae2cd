"""Caches: where Numba keeps gdcore's compiled kernels (with a fallback), and gdcore's bounded memo tables.

Numba caches next to the sources (``__pycache__``) when that folder is
writable, else in the user's cache folder. A system-wide install used from
another account (a shared JupyterHub) may have neither: then the kernels go
to a temporary folder (compiled again in each new process), said once, instead
of failing at the first fit.
"""

import os
import tempfile
import warnings


def remember(cache: dict, key, value, limit: int = 256) -> None:
    """``cache[key] = value``, the cache emptied first when it holds ``limit`` entries (a long sweep's settings).

    The memo tables of values derived from settings (an optimizer's constants, a layout's update lanes) are
    module dictionaries bounded this way: shared by the objects of equal settings, never growing without end.
    """
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


def _writable(folder: str) -> bool:
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def ensure_writable_cache() -> None:
    import numba
    from numba.misc.appdirs import AppDirs

    if numba.config.CACHE_DIR:
        return
    package = os.path.dirname(os.path.abspath(__file__))
    if _writable(os.path.join(package, "__pycache__")):
        return
    if _writable(AppDirs(appname="numba", appauthor=False).user_cache_dir):
        return
    folder = tempfile.mkdtemp(prefix="gdcore-numba-")
    numba.config.CACHE_DIR = folder
    warnings.warn(f"gdcore: no writable cache folder (the package's __pycache__ and the user cache are read-only); "
                  f"compiled kernels go to {folder} and are compiled again in each new process", RuntimeWarning,
                  stacklevel=3)
