"""``iterate.csv`` (byte-offset cursor, header on every start, seeks on resume, quoted
newlines) and ``iterate.batches`` (one cursor move per batch), on both stores."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

import jobs_iterate as ji
import onward
from onward import Job, iterate
from onward.testing import drain, interrupt_during_step

HEADER = b"id,name,notes\r\n"


def csv_records(n: int) -> list[bytes]:
    """``n`` CSV records (after the header) with quoted newlines of both kinds, quotes,
    commas, non-ASCII text and a few blank lines between them."""
    records = []
    for i in range(1, n + 1):
        notes = ["plain", '"line one\r\nline two"', '"unix\nnew\nlines"', '"said ""hi"", left"', "ünï, cödé"][i % 5]
        if "," in notes and not notes.startswith('"'):
            notes = f'"{notes}"'
        name = f'"Name, {i}"' if i % 3 == 0 else f"name{i}"
        records.append(f"{i},{name},{notes}\r\n".encode())
        if i % 7 == 0:
            records.append(b"\r\n")  # a blank line: skipped, as csv.DictReader does
    return records


@pytest.fixture
def app(tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / "app.sqlite3")
    for conn in ji._local.__dict__.pop("conns", {}).values():
        conn.close()


@pytest.fixture
def csv_file(tmp_path: Path) -> tuple[str, list[dict[str, str]], list[int]]:
    """A CSV file with a byte order mark; its rows as csv.DictReader reads them; and the byte
    offset just after each row (where the next one starts), computed from the bytes written."""
    records = csv_records(30)
    path = tmp_path / "people.csv"
    data = b"\xef\xbb\xbf" + HEADER + b"".join(records)
    path.write_bytes(data)
    expected = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    offsets, position = [], 3 + len(HEADER)
    for record in records:
        position += len(record)
        if record != b"\r\n":
            offsets.append(position)
    assert len(offsets) == len(expected) == 30
    return str(path), expected, offsets


def run(app: str, spec: dict[str, Any], *cursors: Any, job: type[Job] = ji.Each) -> onward.JobRecord:
    handle = job.perform_later(app, spec)
    with ExitStack() as stack:
        for cursor in cursors:
            stack.enter_context(interrupt_during_step(job, "process", cursor=cursor))
        drain()
    return handle.refresh()


# -- csv ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("job", [ji.Each, ji.AsyncEach], ids=["for", "async-for"])
def test_csv_with_quoted_newlines_interrupted_twice_each_row_once(
    store: onward.Store, app: str, csv_file: tuple[str, list[dict[str, str]], list[int]], job: type[Job]
) -> None:
    path, expected, offsets = csv_file
    assert any("\r\n" in row["notes"] for row in expected)
    assert any("\n" in row["notes"] and "\r" not in row["notes"] for row in expected)
    record = run(app, {"kind": "csv", "path": path}, offsets[6], offsets[20], job=job)
    assert (record.state, record.resumptions) == ("succeeded", 2), record.error
    assert ji.processed(app) == expected  # every row once, columns mapped after each resume
    assert record.steps[0].cursor == offsets[-1] == Path(path).stat().st_size
    assert (record.steps[0].advanced, record.steps[0].total) == (30, None)


def test_the_cursor_is_the_byte_offset_of_the_next_row(csv_file: tuple[str, list[dict[str, str]], list[int]]) -> None:
    path, expected, offsets = csv_file
    pairs = list(iterate.csv(path).open(None))
    assert [row for row, _ in pairs] == expected
    assert [cursor for _, cursor in pairs] == offsets


def test_a_resumed_csv_seeks_instead_of_reading_again(csv_file: tuple[str, list[dict[str, str]], list[int]]) -> None:
    path, expected, offsets = csv_file
    data = bytearray(Path(path).read_bytes())
    start = 3 + len(HEADER)
    end = offsets[14] - 2  # rows 1-15 become unreadable; their last line end stays
    data[start:end] = b"\x00" * (end - start)
    Path(path).write_bytes(bytes(data))
    resumed = list(iterate.csv(path).open(offsets[14]))
    assert [row for row, _ in resumed] == expected[15:]  # the header still maps the columns
    assert [cursor for _, cursor in resumed] == offsets[15:]


def test_fieldnames_rest_values_encoding_and_options(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("1;Zoë;x;extra\n2;Åsa\n".encode("latin-1"))
    rows = [
        row
        for row, _ in iterate.csv(
            path, encoding="latin-1", delimiter=";", fieldnames=["id", "name", "x"], restkey="more", restval="-"
        ).open(None)
    ]
    assert rows == [{"id": "1", "name": "Zoë", "x": "x", "more": ["extra"]}, {"id": "2", "name": "Åsa", "x": "-"}]
    plain = tmp_path / "plain.csv"
    plain.write_bytes(b"a,b\n1,2")  # no newline after the last row
    assert list(iterate.csv(plain).open(None)) == [({"a": "1", "b": "2"}, 7)]


def test_csv_arguments_are_checked_when_the_source_is_made(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="encoding 'utf-16' does not write line ends as single bytes"):
        iterate.csv(tmp_path / "x.csv", encoding="utf-16")
    with pytest.raises(ValueError, match="unknown encoding 'nope'"):
        iterate.csv(tmp_path / "x.csv", encoding="nope")
    with pytest.raises(TypeError):
        iterate.csv(tmp_path / "x.csv", no_such_option=1)
    with pytest.raises(TypeError, match="fieldnames must be a list of str"):
        iterate.csv(tmp_path / "x.csv", fieldnames="abc")


def test_a_saved_offset_that_is_not_a_row_start_fails_the_job(
    store: onward.Store, app: str, csv_file: tuple[str, list[dict[str, str]], list[int]]
) -> None:
    path, _, offsets = csv_file
    record = run(app, {"kind": "csv", "path": path, "start": offsets[3] + 2})
    assert (record.state, record.attempts) == ("failed", 1)
    last = (record.error or "").splitlines()[-1]
    assert f"Each: step 'process': iterate.csv('{path}'): the saved cursor {offsets[3] + 2} is not at" in last


# -- batches -----------------------------------------------------------------------------------


def test_batches_of_a_list_advance_once_per_batch(store: onward.Store, app: str) -> None:
    items = list(range(10))
    record = run(app, {"kind": "batches", "size": 3, "inner": {"kind": "list", "items": items}}, 6)
    assert (record.state, record.resumptions) == ("succeeded", 1), record.error
    assert ji.processed(app) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    step = record.steps[0]
    assert (step.cursor, step.advanced, step.total) == (10, 4, 4)  # the index of the next item


def test_batches_of_rows_resume_after_the_last_key_of_a_batch(store: onward.Store, app: str, tmp_path: Path) -> None:
    data = str(tmp_path / "data.sqlite3")
    with sqlite3.connect(data) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"n{i}") for i in range(1, 24)])
    conn.close()
    rows = {"kind": "rows", "driver": "sqlite3", "url": data, "sql": "SELECT * FROM items", "key": "id", "batch": 5}
    record = run(app, {"kind": "batches", "size": 4, "inner": rows}, 8, 16)
    assert (record.state, record.resumptions) == ("succeeded", 2), record.error
    batches = ji.processed(app)
    assert [len(b) for b in batches] == [4, 4, 4, 4, 4, 3]
    assert [row for batch in batches for row in batch] == [[i, f"n{i}"] for i in range(1, 24)]
    assert (record.steps[0].cursor, record.steps[0].advanced) == (23, 6)


def test_batches_of_an_async_generator(store: onward.Store, app: str) -> None:
    inner = {"kind": "async-generator", "items": [1, 2, 3, 4, 5]}
    record = run(app, {"kind": "batches", "size": 2, "inner": inner}, 2, job=ji.AsyncEach)
    assert (record.state, record.resumptions) == ("succeeded", 1), record.error
    assert ji.processed(app) == [[1, 2], [3, 4], [5]]
    assert (record.steps[0].cursor, record.steps[0].advanced) == (5, 3)


def test_batches_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"iterate\.batches: size must be an int >= 1, not 0"):
        iterate.batches([1], 0)
    with pytest.raises(TypeError, match=r"iterate.batches\(\) was given a str"):
        iterate.batches("abc", 2)
