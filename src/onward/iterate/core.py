"""``step.each(source)``: iterate a source inside a step, advancing the cursor after each item.

The cursor moves only once the loop body has finished with an item: when the loop asks for
the next item, or when it ends normally. A body that raises or ``break``s leaves its item
unprocessed. Each move goes through the step runner's interruption point in the order every
``advance``/``set`` uses: update the cursor, then check whether to stop, then save.

A :class:`Source` knows how to resume from a saved cursor. Sequences resume by index; other
iterables by skipping the items already processed; the sources of :mod:`onward.iterate`
(rows, querysets, CSV files, batches) seek.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from itertools import count, islice
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from onward import serialization
from onward.errors import InvalidStep

if TYPE_CHECKING:
    from onward.steps import Step

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class SourceError(InvalidStep):
    """A source cannot resume from the saved cursor or cannot read its items.

    Raised without the step's name; :class:`Each` adds it (job and step) before it reaches
    the job, as an :class:`~onward.InvalidStep`, which fails the job at once.
    """


class Source(Generic[T_co]):
    """A source ``step.each`` can resume: subclass it to write your own.

    ``open(cursor)`` yields ``(item, cursor_after_item)`` pairs, starting after ``cursor``
    (``None`` on a fresh step); ``cursor_after_item`` is what ``open`` must be given to go on
    with the item after this one. ``aopen`` does the same for ``async for`` (by default it
    runs ``open``). ``total()`` is the number of items, when known.
    """

    def total(self) -> int | None:
        return None

    def open(self, cursor: Any) -> Iterator[tuple[T_co, Any]]:
        raise SourceError(f"{self!r} is asynchronous: iterate it with async for, in an async def step")

    async def aopen(self, cursor: Any) -> AsyncIterator[tuple[T_co, Any]]:
        for pair in self.open(cursor):
            yield pair


class Paged(Source[T_co]):
    """A source read in pages, each item's cursor given by a function of the item (keyset
    pagination). ``pages`` yields ``(items, key_of, many)``: the cursor after ``item`` is
    ``key_of(item)``, converted to a list when ``many``."""

    def pages(self, cursor: Any) -> Iterator[tuple[list[Any], Callable[[Any], Any], bool]]:
        raise SourceError(f"{self!r} is asynchronous: iterate it with async for, in an async def step")

    async def apages(self, cursor: Any) -> AsyncIterator[tuple[list[Any], Callable[[Any], Any], bool]]:
        for page in self.pages(cursor):
            yield page

    def open(self, cursor: Any) -> Iterator[tuple[T_co, Any]]:
        for items, key_of, many in self.pages(cursor):
            for item in items:
                yield item, _key_cursor(self, key_of(item), many)

    async def aopen(self, cursor: Any) -> AsyncIterator[tuple[T_co, Any]]:
        async for items, key_of, many in self.apages(cursor):
            for item in items:
                yield item, _key_cursor(self, key_of(item), many)


def _key_cursor(source: Source[Any], key: Any, many: bool) -> Any:
    """The cursor for an item's key: a list for several key columns; never NULL."""
    if many:
        key = list(key)
        if None not in key:
            return key
    elif key is not None:
        return key
    raise SourceError(f"{source!r}: an item has a NULL key {key!r}; key columns must not be NULL")


def index_start(cursor: Any, length: int | None) -> int:
    """The index to start at for a saved index cursor (``None``: 0)."""
    if cursor is None:
        return 0
    if type(cursor) is not int or cursor < 0:
        raise SourceError(
            f"the saved cursor {cursor!r} is not an index (iterating by index, the cursor is the index of the "
            "next item); if the step's source changed, enqueue the job with set(fresh=True) to start over"
        )
    return cursor if length is None else min(cursor, length)


class SequenceSource(Source[T_co]):
    """A sequence: the cursor is the index of the next item."""

    def __init__(self, items: Sequence[T_co]) -> None:
        self.items = items

    def __repr__(self) -> str:
        return f"<sequence of {len(self.items)} {type(self.items).__name__} items>"

    def total(self) -> int:
        return len(self.items)

    def items_from(self, cursor: Any) -> tuple[Iterator[T_co], int]:
        """The items from the saved cursor on, and the index of the first of them."""
        start = index_start(cursor, len(self.items))
        return islice(self.items, start, None), start

    def open(self, cursor: Any) -> Iterator[tuple[T_co, Any]]:
        items, start = self.items_from(cursor)
        return zip(items, count(start + 1), strict=False)


class IterableSource(Source[T_co]):
    """Any other iterable: the cursor is the index of the next item; resuming iterates the
    source again and skips the items already processed (it must give them in the same order)."""

    def __init__(self, items: Iterable[T_co]) -> None:
        self.items = items

    def __repr__(self) -> str:
        return f"<{type(self.items).__name__} iterable>"

    def total(self) -> int | None:
        try:
            return len(self.items)  # type: ignore[arg-type]
        except TypeError:
            return None

    def items_from(self, cursor: Any) -> tuple[Iterator[T_co], int]:
        """The items from the saved cursor on, and the index of the first of them."""
        start = index_start(cursor, None)
        return islice(self.items, start, None), start

    def open(self, cursor: Any) -> Iterator[tuple[T_co, Any]]:
        items, start = self.items_from(cursor)
        return zip(items, count(start + 1), strict=False)


class AsyncIterableSource(Source[T_co]):
    """An async iterable: like :class:`IterableSource`, for ``async for`` only."""

    def __init__(self, items: AsyncIterable[T_co]) -> None:
        self.items = items

    def __repr__(self) -> str:
        return f"<{type(self.items).__name__} async iterable>"

    async def aopen(self, cursor: Any) -> AsyncIterator[tuple[T_co, Any]]:
        start = index_start(cursor, None)
        index = 0
        async for item in self.items:
            index += 1
            if index > start:
                yield item, index


def as_source(obj: Any, what: str = "step.each()") -> Source[Any]:
    """``obj`` as a :class:`Source`, or a :class:`SourceError` saying why it cannot be one."""
    if isinstance(obj, Source):
        return obj
    if isinstance(obj, (str, bytes, bytearray)):
        raise SourceError(f"{what} was given a {type(obj).__name__}; to iterate over one value, pass [value]")
    if isinstance(obj, (set, frozenset)):
        raise SourceError(
            f"{what} was given a {type(obj).__name__}, which has no stable order to resume in; pass sorted(...)"
        )
    if isinstance(obj, Sequence):
        return SequenceSource(obj)
    if isinstance(obj, Iterable):
        return IterableSource(obj)
    if isinstance(obj, AsyncIterable):
        return AsyncIterableSource(obj)
    hint = " (call it, or make it an onward.iterate.Source)" if callable(obj) else ""
    raise SourceError(
        f"{what} needs a sequence, an iterable or an onward.iterate source, not {type(obj).__name__}{hint}"
    )


class Each(Generic[T]):
    """What ``step.each(source)`` returns: iterate it with ``for``, or with ``async for`` in
    an ``async def`` step (an asynchronous source needs ``async for``)."""

    __slots__ = ("_source", "_step")

    def __init__(self, step: Step, source: Any) -> None:
        self._step = step
        try:
            self._source: Source[T] = as_source(source)
        except SourceError as exc:
            raise _named(step, exc) from None

    def __repr__(self) -> str:
        return f"<step.each over {self._source!r} in step {self._step.name!r}>"

    def _start(self) -> Source[T]:
        total = self._source.total()
        if total is not None:
            self._step.total = total
        return self._source

    def __iter__(self) -> Iterator[T]:
        source = self._start()
        if isinstance(source, (SequenceSource, IterableSource)):
            return _run_index(self._step, source)
        if isinstance(source, Paged):
            return _run_paged(self._step, source)
        return _run(self._step, source)

    def __aiter__(self) -> AsyncIterator[T]:
        source = self._start()
        if isinstance(source, Paged):
            if type(source).apages is Paged.apages:  # a synchronous source: the same loop as for
                return _arun_sync(_run_paged(self._step, source))
            return _arun_paged(self._step, source)
        if type(source).aopen is Source.aopen:
            return _arun_sync(self.__iter__())
        return _arun(self._step, source)


def _named(step: Step, exc: SourceError) -> InvalidStep:
    return InvalidStep(f"{step._runner.job_name}: step {step.name!r}: {exc}")


def _cursor_path(step: Step) -> str:
    return f"{step._runner.job_name}: step {step.name!r}: cursor"


# The loops below are the hot path of step.each: after the ``yield`` the loop body is done
# with the item, so the cursor moves past it, then the runner's interruption point runs
# (stop check, then a save when checkpoint_interval has passed), as in Step.advance/set.


def _run_index(step: Step, source: SequenceSource[T] | IterableSource[T]) -> Iterator[T]:
    tick = step._runner.tick
    try:
        items, start = source.items_from(step.cursor)
    except SourceError as exc:
        raise _named(step, exc) from None
    for cursor, item in enumerate(items, start + 1):
        yield item
        step.cursor = cursor
        step.advanced += 1
        tick(step, False)


def _run(step: Step, source: Source[T]) -> Iterator[T]:
    tick = step._runner.tick
    check = serialization.check
    path = _cursor_path(step)
    try:
        for item, cursor in source.open(step.cursor):
            yield item
            if type(cursor) is not int:  # ints need no serialization check
                check(cursor, path)
            step.cursor = cursor
            step.advanced += 1
            tick(step, False)
    except SourceError as exc:
        raise _named(step, exc) from None


def _run_paged(step: Step, source: Paged[T]) -> Iterator[T]:
    tick = step._runner.tick
    check = serialization.check
    path = _cursor_path(step)
    try:
        for items, key_of, many in source.pages(step.cursor):
            for item in items:
                yield item
                cursor = key_of(item)
                if many or type(cursor) is not int:
                    cursor = _key_cursor(source, cursor, many)
                    check(cursor, path)
                step.cursor = cursor
                step.advanced += 1
                tick(step, False)
    except SourceError as exc:
        raise _named(step, exc) from None


async def _arun_sync(items: Iterator[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


async def _arun(step: Step, source: Source[T]) -> AsyncIterator[T]:
    tick = step._runner.tick
    check = serialization.check
    path = _cursor_path(step)
    try:
        async for item, cursor in source.aopen(step.cursor):
            yield item
            if type(cursor) is not int:  # ints need no serialization check
                check(cursor, path)
            step.cursor = cursor
            step.advanced += 1
            tick(step, False)
    except SourceError as exc:
        raise _named(step, exc) from None


async def _arun_paged(step: Step, source: Paged[T]) -> AsyncIterator[T]:
    tick = step._runner.tick
    check = serialization.check
    path = _cursor_path(step)
    try:
        async for items, key_of, many in source.apages(step.cursor):
            for item in items:
                yield item
                cursor = key_of(item)
                if many or type(cursor) is not int:
                    cursor = _key_cursor(source, cursor, many)
                    check(cursor, path)
                step.cursor = cursor
                step.advanced += 1
                tick(step, False)
    except SourceError as exc:
        raise _named(step, exc) from None


def key_names(key: Any, what: str) -> tuple[str, ...]:
    """The key column names given as ``key``: one name or a non-empty sequence of names."""
    names = (key,) if isinstance(key, str) else key
    if not isinstance(names, (tuple, list)) or not names:
        raise TypeError(f"{what}: key must be a column name or a list of column names, not {key!r}")
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{what}: key {name!r} is not a column name (letters, digits and _)")
    if len(set(names)) != len(names):
        raise ValueError(f"{what}: key {key!r} names a column twice")
    return tuple(names)


def positive_int(value: Any, name: str, what: str) -> int:
    if type(value) is not int or value < 1:
        raise ValueError(f"{what}: {name} must be an int >= 1, not {value!r}")
    return value


def key_after(source: Source[Any], cursor: Any, keys: int) -> list[Any] | None:
    """A saved keyset cursor as a list of ``keys`` values (``None``: from the start)."""
    if cursor is None:
        return None
    if keys == 1:
        if not isinstance(cursor, list):
            return [cursor]
    elif isinstance(cursor, list) and len(cursor) == keys:
        return cursor
    raise SourceError(
        f"{source!r}: the saved cursor {cursor!r} does not match the key (one value per key column); "
        "if the step's key changed, enqueue the job with set(fresh=True) to start over"
    )
