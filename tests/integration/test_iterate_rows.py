"""``iterate.rows`` (API §16): keyset pages over sqlite3, psycopg and SQLAlchemy connections,
one or several key columns, interrupted and resumed with every row processed once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

import jobs_iterate as ji
import onward
import pg
from onward import Job, iterate
from onward.testing import drain, interrupt_during_step

N = 40
COLUMNS = ["id", "grp", "seq", "name"]


def dataset() -> list[tuple[int, int, int, str]]:
    """``N`` rows: ``grp`` has many ties and does not follow ``id``; (grp, seq) is unique."""
    return [(i, (i * 7) % 5, i % 9 * 10 + i // 9, f"name {i}") for i in range(1, N + 1)]


SCHEMA = "CREATE TABLE items (id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, seq INTEGER NOT NULL, name TEXT)"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / "app.sqlite3")
    for conn in ji._local.__dict__.pop("conns", {}).values():
        conn.close()


@pytest.fixture
def sqlite_data(tmp_path: Path) -> str:
    path = str(tmp_path / "data.sqlite3")
    with sqlite3.connect(path) as conn:
        conn.execute(SCHEMA)
        conn.execute("CREATE UNIQUE INDEX items_grp_seq ON items (grp, seq)")
        conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", dataset())
    conn.close()
    return path


@pytest.fixture
def pg_data(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL schema holding the ``items`` table; its URL."""
    for url in pg.empty_database(request):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCHEMA.replace("INTEGER PRIMARY KEY", "integer PRIMARY KEY"))
            conn.execute("CREATE UNIQUE INDEX items_grp_seq ON items (grp, seq)")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO items VALUES (%s, %s, %s, %s)", dataset())
        yield url


DRIVERS = ["sqlite3", "sqlite3-row", "sqlalchemy-sqlite", "psycopg", "psycopg-dict", "sqlalchemy-pg"]
ASYNC_DRIVERS = ["psycopg-async", "sqlalchemy-async", "sqlite3", "psycopg"]


def spec_for(driver: str, request: pytest.FixtureRequest, **extra: Any) -> dict[str, Any]:
    """A ``rows`` spec reading the ``items`` table through ``driver``."""
    if driver.startswith("sqlite3") or driver == "sqlalchemy-sqlite":
        path = request.getfixturevalue("sqlite_data")
        url = f"sqlite:///{path}" if driver == "sqlalchemy-sqlite" else path
        name = "sqlalchemy" if driver == "sqlalchemy-sqlite" else driver
    else:
        url = request.getfixturevalue("pg_data")
        name = {"sqlalchemy-pg": "sqlalchemy"}.get(driver, driver)
        if driver.startswith("sqlalchemy"):
            url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    spec = {"kind": "rows", "driver": name, "url": url, "sql": "SELECT id, grp, seq, name FROM items", "batch": 7}
    return {**spec, **extra}


def as_rows(items: list[Any]) -> list[list[Any]]:
    """Recorded rows as lists of values, whatever the row type (dict rows keep column order)."""
    return [list(item.values()) if isinstance(item, dict) else item for item in items]


def run(app: str, spec: dict[str, Any], *cursors: Any, job: type[Job] = ji.Each) -> onward.JobRecord:
    handle = job.perform_later(app, spec)
    with ExitStack() as stack:
        for cursor in cursors:
            stack.enter_context(interrupt_during_step(job, "process", cursor=cursor))
        drain()
    return handle.refresh()


@pytest.mark.parametrize("driver", DRIVERS)
def test_rows_by_id_interrupted_twice_each_row_once(
    store: onward.Store, app: str, driver: str, request: pytest.FixtureRequest
) -> None:
    record = run(app, spec_for(driver, request, key="id"), 10, 23)
    assert record.state == "succeeded", record.error
    assert record.resumptions == 2
    assert as_rows(ji.processed(app)) == [list(row) for row in dataset()]  # each once, in key order
    assert (record.steps[0].cursor, record.steps[0].advanced, record.steps[0].total) == (N, N, None)


@pytest.mark.parametrize("driver", DRIVERS)
def test_two_key_columns_with_ties_across_page_boundaries(
    store: onward.Store, app: str, driver: str, request: pytest.FixtureRequest
) -> None:
    ordered = sorted(dataset(), key=lambda row: (row[1], row[2]))
    assert len({row[1] for row in ordered}) < N // 4  # many ties on the first key
    # pages of 3 split groups of equal grp; stop inside a group, twice
    first, second = [ordered[8][1], ordered[8][2]], [ordered[25][1], ordered[25][2]]
    assert ordered[9][1] == first[0]
    assert ordered[26][1] == second[0]
    record = run(app, spec_for(driver, request, key=["grp", "seq"], batch=3), first, second)
    assert record.state == "succeeded", record.error
    assert record.resumptions == 2
    assert as_rows(ji.processed(app)) == [list(row) for row in ordered]
    assert record.steps[0].cursor == [ordered[-1][1], ordered[-1][2]]  # a list for several keys


@pytest.mark.parametrize("driver", ASYNC_DRIVERS)
def test_async_for_over_rows_on_async_and_sync_connections(
    store: onward.Store, app: str, driver: str, request: pytest.FixtureRequest
) -> None:
    spec = spec_for(driver, request, key=["grp", "seq"], batch=4)
    if driver == "sqlalchemy-async":
        spec["url"] = spec["url"].replace("postgresql://", "postgresql+psycopg://", 1)
    ordered = sorted(dataset(), key=lambda row: (row[1], row[2]))
    record = run(app, spec, [ordered[5][1], ordered[5][2]], [ordered[30][1], ordered[30][2]], job=ji.AsyncEach)
    assert (record.state, record.resumptions) == ("succeeded", 2), record.error
    assert as_rows(ji.processed(app)) == [list(row) for row in ordered]


def test_named_parameters_and_a_query_ending_in_a_comment(
    store: onward.Store, app: str, request: pytest.FixtureRequest
) -> None:
    expected = [[row[0], row[3]] for row in dataset() if row[1] == 2 and row[0] > 3]
    for sql in (
        "SELECT id, name FROM items WHERE grp = :grp AND id > :above -- the query's own comment",
        "SELECT id, name FROM items WHERE grp = :grp AND id > :above;\n",
    ):
        spec = spec_for("sqlite3", request, key="id", sql=sql, params={"grp": 2, "above": 3}, batch=2)
        record = run(app, spec, expected[2][0])
        assert record.state == "succeeded", record.error
    assert ji.processed(app) == expected + expected


def test_psycopg_positional_and_named_parameters(store: onward.Store, app: str, request: pytest.FixtureRequest) -> None:
    positional = spec_for("psycopg", request, key="id", sql="SELECT id FROM items WHERE grp = %s", params=[1])
    named = spec_for("psycopg", request, key="id", sql="SELECT id FROM items WHERE grp = %(g)s", params={"g": 1})
    expected = [[row[0]] for row in dataset() if row[1] == 1]
    for spec in (positional, named):
        run(app, spec, expected[3][0])
    assert ji.processed(app) == expected + expected


# -- the queries ------------------------------------------------------------------------------


def traced_pages(path: str, **options: Any) -> tuple[list[Any], list[str]]:
    """Every row ``iterate.rows`` gives on ``path``, and the SQL it ran."""
    conn = sqlite3.connect(path)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        rows = [row for row, _ in iterate.rows(conn, "SELECT * FROM items", **options).open(None)]
    finally:
        conn.close()
    return rows, statements


def test_pages_are_keyset_queries_never_offset_and_use_the_index(sqlite_data: str) -> None:
    rows, statements = traced_pages(sqlite_data, key=["grp", "seq"], batch_size=6)
    assert rows == sorted(dataset(), key=lambda row: (row[1], row[2]))
    pages = [s for s in statements if "ORDER BY" in s]
    assert len(pages) == -(-N // 6)  # the last, short page ends the iteration
    assert not any("OFFSET" in s.upper() for s in statements)
    assert all(s.endswith('ORDER BY "grp", "seq" LIMIT 6') for s in pages)
    last = rows[5]  # the trace shows the statement with its parameters' values
    assert f'WHERE ("grp", "seq") > ({last[1]}, {last[2]}) ORDER BY' in pages[1]
    conn = sqlite3.connect(sqlite_data)
    plan = " ".join(r[-1] for r in conn.execute(f"EXPLAIN QUERY PLAN {pages[1]}"))
    conn.close()
    assert "SEARCH" in plan, plan  # a range over the index, not a scan
    assert "items_grp_seq" in plan, plan


def test_key_values_travel_as_parameters(tmp_path: Path) -> None:
    names = ["O'Brien", "x'); DROP TABLE people; --", 'quote " double', "plain", "ünïcode"]
    conn = sqlite3.connect(tmp_path / "people.sqlite3")
    conn.execute("CREATE TABLE people (name TEXT PRIMARY KEY)")
    conn.executemany("INSERT INTO people VALUES (?)", [(n,) for n in names])
    source = iterate.rows(conn, "SELECT name FROM people", key="name", batch_size=1)
    assert [cursor for _, cursor in source.open(None)] == sorted(names)
    assert [cursor for _, cursor in source.open("O'Brien")] == sorted(names)[sorted(names).index("O'Brien") + 1 :]
    assert conn.execute("SELECT count(*) FROM people").fetchone()[0] == len(names)
    conn.close()


def test_a_resumed_source_starts_after_the_saved_key(sqlite_data: str) -> None:
    conn = sqlite3.connect(sqlite_data)
    source = iterate.rows(conn, "SELECT id, name FROM items", key="id", batch_size=5)
    assert [cursor for _, cursor in source.open(36)] == [37, 38, 39, 40]
    two = iterate.rows(conn, "SELECT grp, seq FROM items", key=["grp", "seq"], batch_size=5)
    assert [row for row, _ in two.open([4, 0])][:1] == [(4, min(r[2] for r in dataset() if r[1] == 4))]
    conn.close()


# -- misuse ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("driver", "extra", "message"),
    [
        (
            "sqlite3",
            {"key": "uid"},
            "Each: step 'process': iterate.rows(key='uid'): key column 'uid' is not among the query's columns "
            "(id, grp, seq, name)",
        ),
        (  # (SQLite renames the second one "id:1" and pages by the first)
            "psycopg",
            {"key": "id", "sql": "SELECT id, grp AS id FROM items"},
            "iterate.rows(key='id'): the query has 2 columns named 'id'",
        ),
        (
            "sqlite3",
            {"key": "name", "sql": "SELECT id, CASE WHEN id > 3 THEN NULL ELSE name END AS name FROM items"},
            "iterate.rows(key='name'): an item has a NULL key",
        ),
    ],
)
def test_a_key_the_rows_cannot_give_fails_the_job_naming_step_and_source(
    store: onward.Store, app: str, request: pytest.FixtureRequest, driver: str, extra: dict[str, Any], message: str
) -> None:
    record = run(app, spec_for(driver, request, **extra))
    assert (record.state, record.attempts) == ("failed", 1)
    last = (record.error or "").splitlines()[-1]
    assert last.startswith("onward.InvalidStep: "), last
    assert message in last, last


def test_a_saved_cursor_that_does_not_fit_the_key_fails_the_job(
    store: onward.Store, app: str, request: pytest.FixtureRequest
) -> None:
    # as when a step's key changes from one column to two while jobs have saved a cursor
    record = run(app, spec_for("sqlite3", request, key=["grp", "seq"], start=5))
    assert (record.state, record.attempts) == ("failed", 1)
    last = (record.error or "").splitlines()[-1]
    assert "Each: step 'process': iterate.rows(key=['grp', 'seq']): the saved cursor 5 does not match" in last
    assert "set(fresh=True)" in last


def test_arguments_are_checked_when_the_source_is_made(sqlite_data: str) -> None:
    conn = sqlite3.connect(sqlite_data)
    with pytest.raises(ValueError, match=r"iterate.rows: key 'id; DROP TABLE items' is not a column name"):
        iterate.rows(conn, "SELECT * FROM items", key="id; DROP TABLE items")
    with pytest.raises(ValueError, match="names a column twice"):
        iterate.rows(conn, "SELECT * FROM items", key=["id", "id"])
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, not 0"):
        iterate.rows(conn, "SELECT * FROM items", batch_size=0)
    with pytest.raises(TypeError, match="sql must be a non-empty str"):
        iterate.rows(conn, "")
    with pytest.raises(TypeError, match=r"sqlite3\.Cursor is not a connection iterate\.rows can use"):
        iterate.rows(conn.cursor(), "SELECT 1")
    with pytest.raises(TypeError, match=r"object is not a connection iterate\.rows can use"):
        iterate.rows(object(), "SELECT 1")
    conn.close()


def test_a_sqlalchemy_engine_is_refused_with_what_to_pass(sqlite_data: str) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(f"sqlite:///{sqlite_data}")
    with pytest.raises(TypeError, match=r"Engine is not a Connection; pass engine.connect\(\)"):
        iterate.rows(engine, "SELECT * FROM items")
    with engine.connect() as conn, pytest.raises(TypeError, match="binds parameters by name; pass params as a dict"):
        iterate.rows(conn, "SELECT * FROM items WHERE id > ?", (1,))
    engine.dispose()
