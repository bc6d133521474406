"""``iterate.csv``: the rows of a CSV file as dicts; the cursor is a byte offset.

The file is read in binary, one line at a time, and the lines are fed to :mod:`csv`, which
asks for more lines while a quoted field runs on; so after each row the position in the file
is exactly where the next row starts. That offset is the cursor, and a resumed step seeks to
it instead of reading the file again. The header is read on every start, so a resumed step
still maps columns by name.
"""

from __future__ import annotations

import codecs
import csv as _csv
import os
from collections.abc import Iterator, Sequence
from typing import IO, Any

from onward.iterate.core import Source, SourceError

_BOM = codecs.BOM_UTF8


def csv(
    path: str | os.PathLike[str],
    *,
    encoding: str = "utf-8",
    errors: str = "strict",
    fieldnames: Sequence[str] | None = None,
    restkey: str | None = None,
    restval: Any = None,
    **csv_options: Any,
) -> CsvRows:
    """The rows of the CSV file at ``path`` as dicts, like :class:`csv.DictReader`.

    The first row is the header unless ``fieldnames`` is given. ``encoding`` must write
    ``\\n`` as one byte (UTF-8, Latin-1, cp1252, ...); a UTF-8 byte order mark is skipped.
    ``csv_options`` go to :func:`csv.reader` (``delimiter``, ``quotechar``, ``dialect``, ...).
    The cursor is the byte offset of the next row.
    """
    return CsvRows(path, encoding, errors, fieldnames, restkey, restval, csv_options)


class CsvRows(Source[dict[str, Any]]):
    """The rows of a CSV file (see :func:`csv`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        encoding: str,
        errors: str,
        fieldnames: Sequence[str] | None,
        restkey: str | None,
        restval: Any,
        options: dict[str, Any],
    ) -> None:
        what = "iterate.csv"
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"{what}: path must be a str or a path, not {path!r}")
        self.path = os.fspath(path)
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            raise ValueError(f"{what}: unknown encoding {encoding!r}") from None
        if '\n\r,;"a'.encode(encoding) != b'\n\r,;"a':
            raise ValueError(f"{what}: encoding {encoding!r} does not write line ends as single bytes; recode the file")
        self.encoding = "utf-8" if name == "utf-8-sig" else encoding
        self.skip_bom = name in ("utf-8", "utf-8-sig")
        self.errors = errors
        if fieldnames is not None and (isinstance(fieldnames, str) or not all(isinstance(f, str) for f in fieldnames)):
            raise TypeError(f"{what}: fieldnames must be a list of str, not {fieldnames!r}")
        self.fieldnames = list(fieldnames) if fieldnames is not None else None
        self.restkey, self.restval = restkey, restval
        self.options = options
        _csv.reader([], **options)  # unknown options fail here, not in the job

    def __repr__(self) -> str:
        return f"iterate.csv({self.path!r})"

    def open(self, cursor: Any) -> Iterator[tuple[dict[str, Any], int]]:
        with open(self.path, "rb") as file:
            reader = _Lines(file, self)
            records = _csv.reader(reader, **self.options)
            fieldnames = self.fieldnames
            if fieldnames is None:
                fieldnames = self._read(records, reader) or []
            start = reader.offset
            if cursor is not None:
                self._seek(file, cursor, start)
                reader.offset = cursor
            width = len(fieldnames)
            while (row := self._read(records, reader)) is not None:
                if not row:
                    continue  # a blank line, as csv.DictReader skips them
                item: dict[str, Any] = dict(zip(fieldnames, row, strict=False))
                if width < len(row):
                    item[self.restkey] = row[width:]  # type: ignore[index]
                elif width > len(row):
                    for name in fieldnames[len(row) :]:
                        item[name] = self.restval
                yield item, reader.offset

    def _read(self, records: Iterator[list[str]], lines: _Lines) -> list[str] | None:
        at = lines.offset
        try:
            return next(records)
        except StopIteration:
            return None
        except _csv.Error as exc:
            raise _csv.Error(f"{self.path}: the row at byte {at}: {exc}") from exc

    def _seek(self, file: IO[bytes], cursor: Any, start: int) -> None:
        size = os.fstat(file.fileno()).st_size
        if type(cursor) is not int or not start <= cursor <= size:
            raise SourceError(
                f"{self!r}: the saved cursor {cursor!r} is not a byte offset in the file (rows start at byte "
                f"{start}, the file has {size} bytes); was the file replaced?"
            )
        if cursor > start:
            file.seek(cursor - 1)
            if file.read(1) != b"\n":
                raise SourceError(
                    f"{self!r}: the saved cursor {cursor} is not at the start of a line; did the file change?"
                )
        file.seek(cursor)


class _Lines:
    """The lines of a binary file, decoded, counting the bytes handed out so far."""

    __slots__ = ("encoding", "errors", "file", "offset")

    def __init__(self, file: IO[bytes], source: CsvRows) -> None:
        self.file = file
        self.encoding, self.errors = source.encoding, source.errors
        self.offset = 0
        if source.skip_bom:
            if file.read(len(_BOM)) == _BOM:
                self.offset = len(_BOM)
            else:
                file.seek(0)

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.file.readline()
        if not line:
            raise StopIteration
        self.offset += len(line)
        return line.decode(self.encoding, self.errors)
