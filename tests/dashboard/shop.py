"""Jobs of a small online shop, for the dashboard's screenshots (``screenshots.py``).

Long jobs can be held part-way: ``hold_at`` (a fraction) makes a step save its cursor there
and wait for :data:`RELEASE`, so a screenshot shows them running.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from onward import Job, Retry, Step

RELEASE = threading.Event()
#: Set once a held job has saved its progress and waits (by job id).
HELD: dict[str, threading.Event] = {}


def _hold(job: Job, step: Step, total: int, hold_at: float | None) -> None:
    step.total = total
    stop = int(total * hold_at) if hold_at is not None else total
    for item in range(step.cursor or 0, total):
        if item == stop:
            step.checkpoint()
            HELD.setdefault(job.id, threading.Event()).set()
            RELEASE.wait(120)
        step.advance(from_=item)


class UploadReceived(Job):
    queue = "uploads"

    def perform(self, file: str, rows: int) -> dict[str, Any]:
        return {"file": file, "rows": rows}

    def continuations(self, file: str, rows: int) -> None:
        ImportCustomers.perform_later(file, rows, hold_at=0.62)
        NotifyUploader.perform_later(file)


class ImportCustomers(Job):
    """Download, validate and import a customer file, then rebuild the search index."""

    queue = "imports"

    def perform(self, file: str, rows: int, hold_at: float | None = None) -> int:
        self.rows, self.hold_at = rows, hold_at
        self.step("download", lambda: time.sleep(0.3))
        self.step("validate", self.validate)
        self.step("import", self.import_rows)
        self.step("reindex", lambda: None)
        return rows

    def validate(self, step: Step) -> None:
        _hold(self, step, self.rows, None)

    def import_rows(self, step: Step) -> None:
        _hold(self, step, self.rows, self.hold_at)


class ResizeImages(Job):
    queue = "media"

    def perform(self, album: str, count: int, hold_at: float | None = None) -> None:
        self.count, self.hold_at = count, hold_at
        self.step("resize", self.resize)

    def resize(self, step: Step) -> None:
        _hold(self, step, self.count, self.hold_at)


class NotifyUploader(Job):
    queue = "mailers"

    def perform(self, file: str) -> None:
        pass


class SendWelcomeEmail(Job):
    queue = "mailers"

    def perform(self, user_id: int) -> None:
        pass


class ChargeCard(Job):
    queue = "payments"
    retry = Retry(attempts=3, backoff=0)

    def perform(self, order_id: int, amount: str, decline: bool = False) -> dict[str, Any]:
        if decline:
            raise PaymentDeclined(f"card declined for order {order_id}: insufficient funds")
        return {"order_id": order_id, "charged": amount}


class PaymentDeclined(Exception):
    pass


class GenerateInvoice(Job):
    queue = "default"

    def perform(self, order_id: int) -> str:
        return f"INV-{order_id}"
