"""``iterate.queryset`` (API §16): keyset pages over a Django QuerySet (on PostgreSQL),
interrupted and resumed on both job stores, every object processed once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import jobs_iterate as ji
import onward
import pg
from onward import Job, iterate
from onward.testing import drain, interrupt_during_step

pytest.importorskip("django")

N = 40


def dataset() -> list[tuple[int, int, int, str]]:
    """(id, grp, seq, name): ``grp`` has many ties and does not follow ``id``."""
    return [(i, (i * 7) % 5, i % 9 * 10 + i // 9, f"name {i}") for i in range(1, N + 1)]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / "app.sqlite3")
    for conn in ji._local.__dict__.pop("conns", {}).values():
        conn.close()


@pytest.fixture
def items(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Django set up on a fresh PostgreSQL schema holding the ``items`` table; the model."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the fixture's own set-up only
    import django
    from django.conf import settings

    for url in pg.empty_database(request):
        parts, query = urlsplit(url), parse_qs(urlsplit(url).query)
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts.path.lstrip("/"),
            "USER": parts.username or "",
            "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or 5432),
            "OPTIONS": {"options": query["options"][0], "application_name": query["application_name"][0]},
        }
        if not settings.configured:
            settings.configure(DATABASES={"default": database}, USE_TZ=True)
            django.setup()
        from django.db import connection, connections

        connection.close()
        connection.settings_dict.update(database)  # shared with the connections of other threads
        model = ji.django_model()
        with connection.schema_editor() as editor:
            editor.create_model(model)
        model.objects.bulk_create([model(id=i, grp=g, seq=s, name=n) for i, g, s, n in dataset()])
        try:
            yield model
        finally:
            connections.close_all()
            # the thread Django's async queries run in keeps its own connection
            from asgiref.sync import sync_to_async

            asyncio.run(sync_to_async(connections.close_all)())


def run(app: str, spec: dict[str, Any], *cursors: Any, job: type[Job] = ji.Each) -> onward.JobRecord:
    handle = job.perform_later(app, spec)
    with ExitStack() as stack:
        for cursor in cursors:
            stack.enter_context(interrupt_during_step(job, "process", cursor=cursor))
        drain()
    return handle.refresh()


def as_fields(rows: list[tuple[int, int, int, str]]) -> list[list[Any]]:
    return [[grp, seq, name] for _, grp, seq, name in rows]


@pytest.mark.parametrize("job", [ji.Each, ji.AsyncEach], ids=["for", "async-for"])
def test_queryset_by_pk_interrupted_twice_each_object_once(
    store: onward.Store, app: str, items: Any, job: type[Job]
) -> None:
    record = run(app, {"kind": "queryset", "key": "pk", "batch": 7}, 9, 30, job=job)
    assert (record.state, record.resumptions) == ("succeeded", 2), record.error
    assert ji.processed(app) == as_fields(dataset())
    assert (record.steps[0].cursor, record.steps[0].advanced) == (N, N)


@pytest.mark.parametrize("job", [ji.Each, ji.AsyncEach], ids=["for", "async-for"])
def test_queryset_on_two_fields_with_ties(store: onward.Store, app: str, items: Any, job: type[Job]) -> None:
    ordered = sorted(dataset(), key=lambda row: (row[1], row[2]))
    first, second = [ordered[10][1], ordered[10][2]], [ordered[22][1], ordered[22][2]]
    record = run(app, {"kind": "queryset", "key": ["grp", "seq"], "batch": 3}, first, second, job=job)
    assert (record.state, record.resumptions) == ("succeeded", 2), record.error
    assert ji.processed(app) == as_fields(ordered)
    assert record.steps[0].cursor == [ordered[-1][1], ordered[-1][2]]


def test_values_dicts(store: onward.Store, app: str, items: Any) -> None:
    ordered = sorted(dataset(), key=lambda row: (row[1], row[2]))
    cursor = [ordered[15][1], ordered[15][2]]
    record = run(app, {"kind": "queryset", "key": ["grp", "seq"], "batch": 4, "values": True}, cursor)
    assert (record.state, record.resumptions) == ("succeeded", 1), record.error
    assert ji.processed(app) == [{"grp": g, "seq": s, "name": n} for _, g, s, n in ordered]


def test_rows_over_django_s_connection(store: onward.Store, app: str, items: Any) -> None:
    spec = {"kind": "rows", "driver": "django", "url": "", "sql": "SELECT id, name FROM items WHERE grp = %s"}
    record = run(app, {**spec, "params": [3], "key": "id", "batch": 2}, 14)  # ids 4, 9, 14, ...: grp 3
    assert record.state == "succeeded", record.error
    assert ji.processed(app) == [[i, n] for i, g, _, n in dataset() if g == 3]


def test_queryset_arguments_are_checked(items: Any) -> None:
    with pytest.raises(ValueError, match=r"iterate\.queryset: onward_iterate_tests\.Item has no field 'nope'"):
        iterate.queryset(items.objects.all(), key="nope")
    with pytest.raises(ValueError, match="the QuerySet is sliced"):
        iterate.queryset(items.objects.all()[:5])
    with pytest.raises(TypeError, match="needs a Django QuerySet, not list"):
        iterate.queryset([])
    source = iterate.queryset(items.objects.values_list("grp", "seq"), key=["grp", "seq"])
    with pytest.raises(onward.InvalidStep, match=r"cannot read the key from \.values_list\(\) rows"):
        next(source.open(None))
    assert repr(source) == "iterate.queryset(Item, key=['grp', 'seq'])"
