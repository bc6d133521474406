"""Stores made by Onward 0.1.0 upgrade in place when a newer Onward opens them: every job
is kept with its state and progress, and the jobs still run (tests/fixtures/make_0_1_0.py)."""

from __future__ import annotations

import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pg
from onward import stores
from onward.stores.base import JobFilter, Store
from onward.testing import drain

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
sys.path.insert(0, str(FIXTURES))  # the job classes of make_0_1_0 are importable

EXPECTED = {  # job class -> states, as 0.1.0 left them
    "make_0_1_0:Parent": ["succeeded"],
    "make_0_1_0:Child": ["succeeded", "enqueued", "discarded", "enqueued"],
    "make_0_1_0:Breaks": ["failed"],
    "make_0_1_0:Keyed": ["running"],
}


def _check_kept_and_runnable(store: Store) -> None:
    jobs = list(reversed(store.list_jobs(JobFilter(limit=100))))
    states: dict[str, list[str]] = {}
    for job in jobs:
        states.setdefault(job.job_class, []).append(str(job.state))
    assert states == EXPECTED
    parent = next(j for j in jobs if j.job_class.endswith("Parent"))
    assert parent.result == {"n": 1}
    assert len(parent.children) == 1
    assert store.get(parent.children[0]).parent_id == parent.id
    broken = next(j for j in jobs if j.job_class.endswith("Breaks"))
    assert broken.error is not None
    assert broken.error.endswith("ValueError: broken at 2")
    assert [(s.name, s.status, s.cursor) for s in broken.steps] == [("part", "interrupted", 2)]
    keyed = next(j for j in jobs if j.job_class.endswith("Keyed"))
    assert keyed.unique_key == "k1"
    assert keyed.lease_expires_at is not None
    # The jobs run under the new Onward: the one due now succeeds, the later one waits.
    assert drain(store=store) == 1
    waiting = [j for j in store.list_jobs(JobFilter(limit=100)) if j.state == "enqueued"]
    assert len(waiting) == 1
    assert waiting[0].scheduled_at > waiting[0].enqueued_at


TIMES = ("scheduled_at", "enqueued_at", "started_at", "finished_at", "lease_expires_at")


def test_a_sqlite_file_made_by_0_1_0_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    shutil.copy(FIXTURES / "onward-0.1.0.db", path)
    with sqlite3.connect(path) as conn:  # as if 0.1.0 had made it just now
        shift = time.time() - conn.execute("SELECT max(enqueued_at) FROM onward_jobs").fetchone()[0]
        conn.execute("UPDATE onward_jobs SET " + ", ".join(f"{c} = {c} + ?" for c in TIMES), (shift,) * len(TIMES))
    with stores.connected(f"sqlite:///{path}") as store:
        _check_kept_and_runnable(store)
    with stores.connected(f"sqlite:///{path}") as store:  # a second open has nothing to do
        assert len(store.list_jobs(JobFilter(limit=100))) == 7


@pytest.fixture
def empty_pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from pg.empty_database(request)


def test_a_postgresql_database_made_by_0_1_0_upgrades(empty_pg_url: str) -> None:
    from onward.stores.postgres.schema import _VERSION_TABLE, SCHEMA_VERSION, current_version, migrations

    url = empty_pg_url
    schema = url.split("search_path%3D")[1].split("&")[0]
    with pg.admin_connect(pg.process_database()) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(_VERSION_TABLE)  # the schema of 0.1.0: its two migrations
        for migration in migrations()[:2]:
            conn.execute(migration.sql)
        conn.execute((FIXTURES / "onward-0.1.0-postgres.sql").read_text(encoding="utf-8"))
        shift = "(SELECT now() - max(enqueued_at) FROM onward_jobs)"  # as if 0.1.0 had made it just now
        conn.execute("UPDATE onward_jobs SET " + ", ".join(f"{c} = {c} + {shift}" for c in TIMES))
    with stores.connected(url) as store:
        _check_kept_and_runnable(store)
    with pg.admin_connect(pg.process_database()) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        assert current_version(conn) == SCHEMA_VERSION
