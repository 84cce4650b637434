"""Groups of correlated maps: the graph ``|r|`` >= threshold and its connected components.

Shared by the redundancy analysis (blocks of correlated maps in a layer) and pruning (one
representative kept per group).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_fraction

__all__ = ["correlation_graph", "correlation_groups"]


def correlation_graph(matrix: Any, threshold: float, *, exclude: Any = None) -> np.ndarray:
    """Adjacency of the maps of one layer: ``|r| >= threshold`` (no self-loops).

    Parameters
    ----------
    matrix : array of shape (K, K)
        Within-layer similarity (signed or absolute; NaN = undefined, never an edge).
    threshold : float in [0, 1]
    exclude : array of bool, shape (K,), optional
        Maps without any edge (e.g. constant maps).

    Returns
    -------
    ndarray of bool, shape (K, K)
    """
    threshold = check_fraction("threshold", threshold)
    r = np.abs(np.asarray(matrix, dtype=np.float64))
    if r.ndim != 2 or r.shape[0] != r.shape[1]:
        raise ValueError(f"the similarity matrix must be square (K, K), got shape {r.shape}")
    adj = np.nan_to_num(r, nan=0.0) >= threshold
    np.fill_diagonal(adj, False)
    if exclude is not None:
        out = np.asarray(exclude, dtype=bool)
        if out.shape != (r.shape[0],):
            raise ValueError(f"exclude must have length {r.shape[0]}, got shape {out.shape}")
        adj[out, :] = False
        adj[:, out] = False
    return adj


def correlation_groups(matrix: Any, threshold: float, *, exclude: Any = None) -> np.ndarray:
    """Connected components of :func:`correlation_graph`: a group label per map.

    Returns
    -------
    ndarray of int, shape (K,)
        Maps without a partner are groups of one.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    adj = correlation_graph(matrix, threshold, exclude=exclude)
    _, labels = connected_components(csr_matrix(adj), directed=False)
    return labels
