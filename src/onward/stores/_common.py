"""What both SQL stores share: the claimed columns and their reader, the filter of job
listings, migration files, and URL masking. No driver is imported here."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from onward.records import to_datetime
from onward.stores.base import Claimed, JobFilter, NewJob

__all__ = [
    "row_head",
    "CLAIMED_COLUMNS",
    "Migration",
    "chunk_sizes",
    "claimed_from_row",
    "filter_sql",
    "mask_url",
    "migrations",
]


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


#: The columns a store's claim returns first, in this order (see :func:`claimed_from_row`).
CLAIMED_COLUMNS = (
    "id, job_class, queue, priority, args, kwargs, attempts, resumptions, steps, job_state,"
    " lease_token, resume_pending, parent_id, unique_key, trace_context, scheduled_for, run_timeout, batch_id,"
    " parent_batch_id"
)


def claimed_from_row(row: Sequence[Any]) -> Claimed:
    """A :class:`Claimed` from a row that starts with ``CLAIMED_COLUMNS``: read by position,
    several times faster than by name, for every claimed job."""
    return Claimed(
        id=row[0],
        job_class=row[1],
        queue=row[2],
        priority=row[3],
        args=row[4],
        kwargs=row[5],
        attempts=row[6],
        resumptions=row[7],
        steps=row[8],
        job_state=row[9],
        lease_token=row[10],
        resumed=bool(row[11]),
        parent_id=row[12],
        unique_key=row[13],
        trace_context=row[14],
        scheduled_for=None if row[15] is None else to_datetime(row[15]),
        timeout=row[16],
        batch_id=row[17],
        parent_batch_id=row[18],
    )


def filter_sql(
    where: JobFilter, mark: str, alias: str = "", *, state_sql: Mapping[str, str] | None = None
) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause for ``where`` (``""`` when nothing is filtered) and its
    parameters, with ``mark`` as the driver's placeholder and ``alias`` the jobs table's
    alias. Columns come from this code only; every value is a parameter, except a state found
    in ``state_sql``: the store's own constant condition for it (SQLite uses a partial index
    only when the query spells out its condition). The id prefix becomes a range, so the
    unique index on ``id`` serves it."""
    col = f"{alias}." if alias else ""
    clauses: list[str] = []
    params: list[Any] = []
    state = where.state
    if state_sql is not None and state is not None and state in state_sql:
        clauses.append(state_sql[state])
        state = None
    for column, value in (
        ("state", state),
        ("queue", where.queue),
        ("job_class", where.job_class),
        ("parent_id", where.parent_id),
        ("schedule_key", where.schedule_key),
        ("batch_id", where.batch_id),
    ):
        if value is not None:
            clauses.append(f"{col}{column} = {mark}")
            params.append(value)
    if where.continuation_failed:
        clauses.append(f"{col}continuation_error IS NOT NULL")
    if where.before is not None:
        clauses.append(f"{col}seq < (SELECT b.seq FROM onward_jobs AS b WHERE b.id = {mark})")
        params.append(where.before)
    if where.id_prefix:
        prefix = where.id_prefix
        clauses.append(f"{col}id >= {mark} AND {col}id < {mark}")
        params.extend((prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


@dataclass(frozen=True)
class Migration:
    """One numbered schema change, ``NNNN_name.sql`` in a store's ``migrations`` folder."""

    version: int
    name: str
    sql: str


def migrations(package: str) -> list[Migration]:
    """The numbered migration files of ``package`` (``onward.stores.sqlite``...), in order;
    ``RuntimeError`` if one is missing."""
    found = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(f"{package}: migration {expected:04d} is missing")
    return found


def chunk_sizes(n: int, largest: int) -> list[int]:
    """``n`` as a sum of powers of two, largest first, none above ``largest``: statements
    over many rows in a few shapes, so each connection's statement cache stays small."""
    sizes = []
    while n:
        size = min(largest, 1 << (n.bit_length() - 1))
        sizes.append(size)
        n -= size
    return sizes


def row_head(job: NewJob) -> tuple[Any, ...]:
    """The values of the columns every job row starts with, in the stores' insert order: id,
    class, queue, priority, args, kwargs, max attempts, max resumptions."""
    return (job.id, job.job_class, job.queue, job.priority, job.args, job.kwargs, job.max_attempts, job.max_resumptions)
