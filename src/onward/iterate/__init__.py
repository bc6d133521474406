"""Sources for ``step.each``: iterate in a step and resume where it stopped.

``step.each(source)`` yields the items of ``source`` and advances the step's cursor after
the loop body has finished with each one. ``source`` is any sequence (the cursor is the index
of the next item) or one of:

- :func:`rows`: keyset pages over a query (sqlite3, psycopg, SQLAlchemy; never ``OFFSET``);
- :func:`queryset`: keyset pages over a Django ``QuerySet``;
- :func:`csv`: the rows of a CSV file as dicts, resumed by seeking to a byte offset;
- :func:`batches`: lists of up to ``size`` items of another source, one cursor move each.

Subclass :class:`Source` to write a source of your own.
"""

from onward.iterate.core import Each, Source
from onward.iterate.csv_file import CsvRows, csv
from onward.iterate.grouping import Batches, batches
from onward.iterate.querysets import queryset
from onward.iterate.sql import Rows, rows

__all__ = [
    # sources
    "rows",
    "queryset",
    "csv",
    "batches",
    # writing a source
    "Source",
    # what they return
    "Each",
    "Rows",
    "CsvRows",
    "Batches",
]
