"""``iterate.queryset``: keyset pages over a Django ``QuerySet``.

Each page is ``qs.filter(<after the last key>).order_by(*keys)[:batch_size]``; for several
keys the condition is ``k1 > a OR (k1 = a AND k2 > b) ...``, under ``k1 >= a`` so that an
index on the keys serves it. :func:`onward.iterate.queryset` imports this module (and so
Django) only when it is called.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import attrgetter, itemgetter
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Q, QuerySet

from onward.iterate.core import Paged, SourceError, key_after, key_names, positive_int

Page = tuple[list[Any], Callable[[Any], Any], bool]


class QuerySetRows(Paged[Any]):
    """A keyset-paginated QuerySet (see :func:`queryset`)."""

    def __init__(self, qs: Any, key: str | Sequence[str], batch_size: int) -> None:
        what = "iterate.queryset"
        if not isinstance(qs, QuerySet):
            raise TypeError(f"{what} needs a Django QuerySet, not {type(qs).__name__}")
        if qs.query.is_sliced:
            raise ValueError(f"{what}: the QuerySet is sliced; pass it whole (keyset pages slice it themselves)")
        self.qs = qs
        self.names = key_names(key, what)
        meta = qs.model._meta
        self.fields = tuple(column for name in self.names for column in _columns(meta, name, what))
        self.batch_size = positive_int(batch_size, "batch_size", what)

    def __repr__(self) -> str:
        key = self.names[0] if len(self.names) == 1 else list(self.names)
        return f"iterate.queryset({self.qs.model.__name__}, key={key!r})"

    def _page(self, after: list[Any] | None) -> Any:
        qs = self.qs if after is None else self.qs.filter(self._after(after))
        return qs.order_by(*self.fields)[: self.batch_size]

    def _after(self, after: list[Any]) -> Any:
        fields = self.fields
        condition = Q(**{f"{fields[0]}__gt": after[0]})
        for i in range(1, len(fields)):
            equal = {field: value for field, value in zip(fields[:i], after, strict=False)}
            condition |= Q(**equal, **{f"{fields[i]}__gt": after[i]})
        if len(fields) > 1:
            condition &= Q(**{f"{fields[0]}__gte": after[0]})
        return condition

    def _reader(self, item: Any) -> Callable[[Any], Any]:
        """How to read the key from items like ``item``: model instances or ``.values()`` dicts."""
        if isinstance(item, Mapping):
            keys = []
            for field, name in zip(self.fields, self.names, strict=False):
                found = next((k for k in (field, name) if k in item), None)
                if found is None:
                    raise SourceError(f"{self!r}: the .values() rows lack the key field {name!r}; include it")
                keys.append(found)
            return itemgetter(*keys)
        if isinstance(item, tuple):
            raise SourceError(f"{self!r}: cannot read the key from .values_list() rows; use .values() or objects")
        return attrgetter(*self.fields)

    def pages(self, cursor: Any) -> Iterator[Page]:
        after = key_after(self, cursor, len(self.fields))
        many = len(self.fields) > 1
        key_of: Callable[[Any], Any] | None = None
        while True:
            page = list(self._page(after))
            if not page:
                return
            if key_of is None:
                key_of = self._reader(page[0])
            yield page, key_of, many
            if len(page) < self.batch_size:
                return
            last = key_of(page[-1])
            after = list(last) if many else [last]

    async def apages(self, cursor: Any) -> AsyncIterator[Page]:
        after = key_after(self, cursor, len(self.fields))
        many = len(self.fields) > 1
        key_of: Callable[[Any], Any] | None = None
        while True:
            page = [item async for item in self._page(after)]
            if not page:
                return
            if key_of is None:
                key_of = self._reader(page[0])
            yield page, key_of, many
            if len(page) < self.batch_size:
                return
            last = key_of(page[-1])
            after = list(last) if many else [last]


def _columns(meta: Any, name: str, what: str) -> list[str]:
    """The column attribute names (``author_id`` for ``author``) that key ``name`` stands for."""
    field = meta.pk if name == "pk" else None
    if field is None:
        try:
            field = meta.get_field(name)
        except FieldDoesNotExist:
            raise ValueError(f"{what}: {meta.label} has no field {name!r}") from None
    if type(field).__name__ == "CompositePrimaryKey":  # Django 5.2+: key on its fields, in order
        return [part.attname for part in field.fields]
    if not getattr(field, "concrete", False) or field.many_to_many or getattr(field, "attname", None) is None:
        raise ValueError(f"{what}: {meta.label}.{name} is not a column; key on the model's own fields")
    return [field.attname]
