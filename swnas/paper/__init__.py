"""The Stage-Wise NAS paper's experiments: its published numbers, its tables, ``swnas paper TABLE``.

Published numbers: :mod:`swnas.paper.published`; tables that set measured rows beside them:
:mod:`swnas.paper.tables`; the runs behind each table: :mod:`swnas.paper.runner`. See
``docs/protocol.md``.
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
