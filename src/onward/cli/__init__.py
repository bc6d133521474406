"""The ``onward`` command (also ``python -m onward``). One module per group of commands."""

from __future__ import annotations

# Importing a command module registers its commands on ``main``.
from onward.cli import dashboard as _dashboard  # noqa: F401
from onward.cli import demo as _demo  # noqa: F401
from onward.cli import inspection as _inspection  # noqa: F401
from onward.cli import queues as _queues  # noqa: F401
from onward.cli import schedules as _schedules  # noqa: F401
from onward.cli import steering as _steering  # noqa: F401
from onward.cli import worker as _worker  # noqa: F401
from onward.cli.base import main

__all__ = ["main"]
