"""The seed's ``GenerateReportJob``: aggregate a large table with a cursor, then render.

The running totals live in ``self.state``, which is saved in the same write as the cursor,
together with the id of the last sale they include. Whatever interrupts the job, a sale is
counted once: the report is exact even when a crash makes a few sales be read twice. The
render step is ``isolated``: it gets an execution of its own. ``GenerateReportEachJob``
aggregates with ``step.each`` over ``iterate.rows`` instead of an explicit cursor.

    python generate_report.py [--each] [SALES] [REPORT.csv]
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterator

import app_db

import onward
from onward import Job, Step, iterate


def sales(start: int | None) -> Iterator[tuple[int, str, int]]:
    """Sales in id order from ``start``, in batches."""
    next_id = start or 0
    while True:
        batch = (
            app_db.connect()
            .execute("SELECT id, region, cents FROM sales WHERE id >= ? ORDER BY id LIMIT 100", (next_id,))
            .fetchall()
        )
        if not batch:
            return
        yield from batch
        next_id = batch[-1][0] + 1


class GenerateReportJob(Job):
    """Writes total sales per region to a CSV file."""

    def unique_key(self, report_path: str) -> str:
        return f"report:{report_path}"

    def perform(self, report_path: str) -> dict[str, int]:
        self.report_path = report_path
        self.step("aggregate", self.aggregate)
        self.step("render", self.render, isolated=True)
        return dict(self.state["report"]["totals"])

    def aggregate(self, step: Step) -> None:
        step.total = app_db.connect().execute("SELECT count(*) FROM sales").fetchone()[0]
        for sale_id, region, cents in sales(step.cursor):
            app_db.work()
            app_db.record_effect("aggregated", sale_id)
            self.add_sale(sale_id, region, cents)
            step.advance(from_=sale_id)

    def add_sale(self, sale_id: int, region: str, cents: int) -> None:
        report = self.state.get("report", {"through": 0, "totals": {}})
        if sale_id > report["through"]:  # a save may already hold this sale, not yet its advance
            totals = dict(report["totals"])
            totals[region] = totals.get(region, 0) + cents
            # one assignment: a save never sees the totals without the matching "through"
            self.state["report"] = {"through": sale_id, "totals": totals}

    def render(self) -> None:
        # write then rename: a crash never leaves half a report behind
        tmp = f"{self.report_path}.tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["region", "cents"])
            for region, cents in sorted(self.state["report"]["totals"].items()):
                writer.writerow([region, cents])
        os.replace(tmp, self.report_path)


class GenerateReportEachJob(GenerateReportJob):
    """The same report, aggregated with ``step.each``: the cursor is the last sale id counted."""

    def aggregate(self, step: Step) -> None:
        step.total = app_db.connect().execute("SELECT count(*) FROM sales").fetchone()[0]
        for sale_id, region, cents in step.each(iterate.rows(app_db.connect(), "SELECT id, region, cents FROM sales")):
            app_db.work()
            app_db.record_effect("aggregated", sale_id)
            self.add_sale(sale_id, region, cents)


def read_report(report_path: str) -> dict[str, int]:
    with open(report_path, newline="") as f:
        return {row["region"]: int(row["cents"]) for row in csv.DictReader(f)}


def main(argv: list[str]) -> None:
    enqueue_only = "--enqueue-only" in argv
    job = GenerateReportEachJob if "--each" in argv else GenerateReportJob
    args = [a for a in argv if not a.startswith("--")]
    onward.connect()
    app_db.create_sales(int(args[0]) if args else 2000)
    report_path = os.path.abspath(args[1] if len(args) > 1 else "report.csv")
    handle = job.perform_later(report_path)
    print(f"job {handle.id} enqueued; report will be written to {report_path}")
    if enqueue_only:
        return
    from onward.testing import drain

    drain()
    print(f"job {handle.refresh().state}; report: {read_report(report_path)}")
    print(f"expected:          {app_db.expected_totals()}")


if __name__ == "__main__":
    main(sys.argv[1:])
