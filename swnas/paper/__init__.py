"""The Stage-Wise NAS paper's experiments: its published numbers (:mod:`swnas.paper.published`),
the tables that set measured rows beside them (:mod:`swnas.paper.tables`) and, once wired to the
search, one command per table (``swnas paper TABLE``). See ``docs/protocol.md``.
"""

from __future__ import annotations

from swnas.paper.published import PUBLISHED, TABLES, PublishedRow, published_rows
from swnas.paper.tables import PaperTable, TableRow, render_csv, render_markdown, side_by_side, write_table

__all__ = [
    "PUBLISHED",
    "TABLES",
    "PublishedRow",
    "published_rows",
    "PaperTable",
    "TableRow",
    "render_csv",
    "render_markdown",
    "side_by_side",
    "write_table",
]
