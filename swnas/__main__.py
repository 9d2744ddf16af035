"""``python -m swnas`` (also what ``torchrun ... -m swnas`` runs)."""

from __future__ import annotations

from swnas.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
