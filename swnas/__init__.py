"""swnas: Stage-Wise Neural Architecture Search.

The network is S stages of m_i modules; the search deepens every stage in a temporary network,
scores each stage's output features (PLS-VIP, inf-FS or il-FS) and keeps the extra depth only
where the score rose. See :mod:`swnas.scoring` for the scorers.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
