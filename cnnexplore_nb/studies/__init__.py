"""Study orchestration used by the notebooks (settings per scale, cached training, tables).

Submodules are imported explicitly: ``from cnnexplore_nb.studies.vessels import ...``.
"""

from __future__ import annotations

__all__ = [
    "own_network",
    "transfer",
    "transfer_analysis",
    "transfer_gamma",
    "transfer_report",
    "transfer_verdicts",
    "vessel_correlation",
    "vessels",
]
