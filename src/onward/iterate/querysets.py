"""``iterate.queryset``: keyset pages over a Django ``QuerySet`` (see
:mod:`onward.contrib.django.queryset`, imported only when this is called)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from onward.contrib.django.queryset import QuerySetRows


def queryset(qs: Any, key: str | Sequence[str] = "pk", batch_size: int = 1000) -> QuerySetRows:
    """The objects of the Django QuerySet ``qs``, read in pages of ``batch_size`` in ``key`` order.

    ``key`` names the model field (or fields, together unique and never NULL) to page by;
    ``"pk"`` is the primary key. The QuerySet's own ordering is replaced by the key's. Items are
    what the QuerySet gives (model instances, or dicts from ``.values()``); the cursor is the
    last processed key (a list for several key fields).
    """
    from onward.contrib.django.queryset import QuerySetRows

    return QuerySetRows(qs, key, batch_size)
