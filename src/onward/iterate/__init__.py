"""Sources for ``step.each``: iterate in a step and resume where it stopped.

``step.each(source)`` yields the items of ``source`` and advances the step's cursor after
the loop body has finished with each one. ``source`` is any sequence (the cursor is the index
of the next item) or one of:

- :func:`rows`: keyset pages over a query (sqlite3, psycopg, SQLAlchemy);
- :func:`queryset`: keyset pages over a Django ``QuerySet``;
- :func:`csv`: the rows of a CSV file as dicts, resumed by seeking to a byte offset;
- :func:`batches`: lists of up to ``size`` items of another source.

Subclass :class:`Source` to write a source of your own.
"""

from onward.iterate.core import Each, Source
from onward.iterate.sql import Rows, rows

__all__ = ["Each", "Rows", "Source", "rows"]
