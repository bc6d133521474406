"""Each test starts with no schedule declared in this process, and leaves none behind."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_schedules_declared(fresh_schedules: None) -> None:
    return None
