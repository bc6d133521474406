"""PostgreSQL URLs reach libpq as written, minus Onward's own options."""

from __future__ import annotations

import pytest

pytest.importorskip("psycopg")

from onward.stores.postgres.connection import split_url


def test_a_url_without_host_keeps_its_slashes() -> None:
    assert split_url("postgresql:///app") == ("postgresql:///app", {})


def test_spaces_in_options_stay_spaces_for_libpq() -> None:
    url = "postgresql://app@db/app?options=-c%20statement_timeout%3D5000&pool_size=3&reconnect_timeout=9"
    assert split_url(url) == (
        "postgresql://app@db/app?options=-c%20statement_timeout%3D5000",
        {"pool_size": "3", "reconnect_timeout": "9"},
    )


def test_only_onward_options_are_taken_out() -> None:
    assert split_url("postgres://a:b@h:5433/d?pool_size=2") == ("postgres://a:b@h:5433/d", {"pool_size": "2"})
