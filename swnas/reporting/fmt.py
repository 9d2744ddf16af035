"""Numbers for people: counts (``0.15 M``, ``1.06 M``), scores (4 significant digits), percentages.

Used by every output a person reads (progress lines, ``table.md``, the HTML page, the charts,
``swnas export``); files meant for programs (``search.json``, ``table.csv``) keep full precision.
"""

from __future__ import annotations

from typing import Any

__all__ = ["human_count", "sig4", "score_pair", "pct"]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def human_count(v: Any) -> str:
    """A count: ``0.15 M``, ``1.06 M``, ``45.5 M``, ``2.31 G``, ``96.2 k``, ``850`` (``-`` when unknown)."""
    if not _number(v):
        return "-"
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.3g} G"
    if a >= 1e6:
        return f"{v / 1e6:.3g} M"
    if a >= 1e5:
        return f"{v / 1e6:.2f} M"
    if a >= 1e3:
        return f"{v / 1e3:.3g} k"
    return f"{v:g}"


def sig4(v: Any) -> str:
    """A score to 4 significant digits (``0.9459``, ``12.35``; ``-`` when unknown)."""
    return f"{v:.4g}" if _number(v) else "-"


def score_pair(a: Any, t: Any) -> tuple[str, str]:
    """The scores of A and T to 4 significant digits, or as many more (up to 10) as tell them apart.

    Decisions can hinge on the 5th digit (``0.93261`` vs ``0.93264`` grows the stage); the two
    numbers shown then differ as the two scores do.
    """
    if not (_number(a) and _number(t)):
        return sig4(a), sig4(t)
    for digits in range(4, 11):
        sa, st = f"{a:.{digits}g}", f"{t:.{digits}g}"
        if sa != st or a == t:
            return sa, st
    return sa, st


def pct(v: Any, unit: str = "") -> str:
    """``v`` (a fraction) as a percentage with 2 decimals, ``n/a`` when unknown."""
    return f"{100 * v:.2f}{unit}" if _number(v) else "n/a"
