"""Fresh PostgreSQL databases for tests.

``ONWARD_TEST_POSTGRES_URL`` names the server (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

ADMIN_URL = os.environ.get("ONWARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def unavailable(reason: str) -> None:
    message = f"PostgreSQL tests need a server: {reason}. Start PostgreSQL or set ONWARD_TEST_POSTGRES_URL."
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def fresh_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """Yield the URL of a new, empty database; drop it afterwards."""
    try:
        from onward.stores import postgres  # noqa: F401
    except ImportError as exc:
        unavailable(f"the PostgreSQL store cannot be imported ({exc})")
    unavailable("the PostgreSQL test database helper is not set up")
    yield ""
