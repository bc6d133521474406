"""``iterate.batches``: lists of up to ``size`` items of another source, one cursor move each.

The cursor after a batch is the inner source's cursor after the batch's last item (for a
sequence, the index of the next item), so a resumed step starts with the next batch, and
changing ``size`` between executions still resumes at the right item.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, TypeVar

from onward.iterate.core import Source, SourceError, as_source, positive_int

T = TypeVar("T")


def batches(source: Iterable[T] | AsyncIterable[T] | Source[T], size: int) -> Batches[T]:
    """Lists of up to ``size`` items of ``source`` (a sequence, an iterable or a source)."""
    return Batches(source, size)


class Batches(Source[list[T]]):
    """Items of another source, grouped (see :func:`batches`)."""

    def __init__(self, source: Iterable[T] | AsyncIterable[T] | Source[T], size: int) -> None:
        self.size = positive_int(size, "size", "iterate.batches")
        try:
            self.inner: Source[T] = as_source(source, "iterate.batches()")
        except SourceError as exc:
            raise TypeError(str(exc)) from None

    def __repr__(self) -> str:
        return f"iterate.batches({self.inner!r}, {self.size})"

    def total(self) -> int | None:
        inner = self.inner.total()
        return None if inner is None else -(-inner // self.size)

    def open(self, cursor: Any) -> Iterator[tuple[list[T], Any]]:
        size = self.size
        batch: list[T] = []
        last: Any = cursor
        for item, last in self.inner.open(cursor):
            batch.append(item)
            if len(batch) == size:
                yield batch, last
                batch = []
        if batch:
            yield batch, last

    async def aopen(self, cursor: Any) -> AsyncIterator[tuple[list[T], Any]]:
        size = self.size
        batch: list[T] = []
        last: Any = cursor
        async for item, last in self.inner.aopen(cursor):
            batch.append(item)
            if len(batch) == size:
                yield batch, last
                batch = []
        if batch:
            yield batch, last
