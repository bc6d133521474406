"""The seed's ``ProcessImportJob``: initialize, process records with a cursor, finalize.

``ProcessImportEachJob`` is the same job with the loop written with ``step.each`` over
``iterate.rows``: keyset pages over the records, the cursor moved after each record.

Run the whole example in one process (``--each`` runs ``ProcessImportEachJob``)::

    python process_import.py [--each] [RECORDS]

or enqueue here and run a worker elsewhere (see README.md)::

    python process_import.py --enqueue-only 5000
    onward worker --import process_import
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import app_db

import onward
from onward import Job, Step, iterate

BATCH = 100


class Import:
    """One import of the application database."""

    def __init__(self, import_id: int) -> None:
        self.id = import_id

    @classmethod
    def get(cls, import_id: int) -> Import:
        if app_db.connect().execute("SELECT 1 FROM imports WHERE id = ?", (import_id,)).fetchone() is None:
            raise LookupError(f"no import {import_id}")
        return cls(import_id)

    @property
    def record_count(self) -> int:
        row = app_db.connect().execute("SELECT record_count FROM imports WHERE id = ?", (self.id,)).fetchone()
        return int(row[0])

    def update(self, status: str) -> None:
        app_db.connect().execute("UPDATE imports SET status = ? WHERE id = ?", (status, self.id))

    def records(self, start: int | None) -> Iterator[tuple[int, str]]:
        """Records in id order from ``start`` (the cursor: the next id to process), in batches."""
        next_id = start or 0
        while True:
            batch = (
                app_db.connect()
                .execute(
                    "SELECT id, payload FROM import_records WHERE import_id = ? AND id >= ? ORDER BY id LIMIT ?",
                    (self.id, next_id, BATCH),
                )
                .fetchall()
            )
            if not batch:
                return
            yield from batch
            next_id = batch[-1][0] + 1


def process_record(record_id: int, payload: str) -> None:
    app_db.work()
    app_db.record_effect("imported", record_id)


class ProcessImportJob(Job):
    """Imports every record once; resumable at the record it stopped at."""

    def unique_key(self, import_id: int) -> str:
        # one job per import: enqueueing it again while it runs is a no-op, and after a
        # failure perform_later/perform_now resume the same job from its checkpoint
        return f"import:{import_id}"

    def perform(self, import_id: int) -> int:
        self.imp = Import.get(import_id)  # code outside steps runs in every execution
        self.step("initialize", lambda: self.imp.update("processing"))
        self.step("process", self.process_records)
        self.step("finalize")
        return int(self.state.get("imported", 0))

    def process_records(self, step: Step) -> None:
        step.total = self.imp.record_count
        for record_id, payload in self.imp.records(start=step.cursor):
            process_record(record_id, payload)
            self.state["imported"] = self.state.get("imported", 0) + 1
            step.advance(from_=record_id)  # the cursor is now the next record to process

    def finalize(self) -> None:
        self.imp.update("completed")


class ProcessImportEachJob(ProcessImportJob):
    """The same job, its loop written with ``step.each``: the cursor is the last record id
    processed, moved once the loop body has finished with a record."""

    def process_records(self, step: Step) -> None:
        step.total = self.imp.record_count
        records = iterate.rows(
            app_db.connect(), "SELECT id, payload FROM import_records WHERE import_id = ?", (self.imp.id,), key="id"
        )
        for record_id, payload in step.each(records):
            process_record(record_id, payload)
            self.state["imported"] = self.state.get("imported", 0) + 1


def main(argv: list[str]) -> None:
    enqueue_only = "--enqueue-only" in argv
    job = ProcessImportEachJob if "--each" in argv else ProcessImportJob
    args = [a for a in argv if not a.startswith("--")]
    records = int(args[0]) if args else 1000
    onward.connect()
    import_id = app_db.create_import(records)
    handle = job.perform_later(import_id)
    print(f"import {import_id}: job {handle.id} enqueued ({records} records)")
    if enqueue_only:
        return
    from onward.testing import drain

    drain()
    record = handle.refresh()
    print(f"job {record.state}: {record.result} records imported; steps:")
    for s in record.steps:
        print(f"  {s.name:<10} {s.status:<10} cursor={s.cursor} advanced={s.advanced} total={s.total}")


if __name__ == "__main__":
    main(sys.argv[1:])
