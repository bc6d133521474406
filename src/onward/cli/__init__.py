"""The ``onward`` command (also ``python -m onward``). One module per group of commands."""

from __future__ import annotations

from onward.cli import worker as _worker  # noqa: F401  (registers its commands)
from onward.cli.base import main

__all__ = ["main"]
