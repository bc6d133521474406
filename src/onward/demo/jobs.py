"""The seed document's jobs, in Python: a welcome-email chain (continuations), a bulk email
job and an import (steps), each writing its side effects to the demo's application database;
and a schedule, ``demo-heartbeat``, run by whichever demo worker is up.

A fan-in: the thumbnails of an album as one batch (``MakeThumbnail`` members), then
``PublishAlbum``, its callback, once they all succeeded.

The chain, as in the seed::

    SendWelcomeEmail ──┬── SendOnboardingTips (after a wait) ── TrackSignupMetrics
                       └── NotifyAdmin (at once, in parallel)

The stepped jobs send at most :data:`RATE` items per second (a mail provider's rate limit),
which is what lets the demo state how many items a crash can repeat: at most the items of one
``checkpoint_interval`` plus the one in flight.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import onward
from onward import Job, Retry, Step
from onward.demo import app

#: Items per second the stepped jobs may send or import (each waits 1/RATE after an item).
RATE = 400
#: Seconds between durable cursor saves of the stepped jobs.
CHECKPOINT_INTERVAL = 0.25
#: The seed waits 5 minutes before the onboarding tips; the demo sets a few seconds.
TIPS_WAIT_VAR = "ONWARD_DEMO_TIPS_WAIT"
#: Seconds between the ticks of the demo's schedule.
HEARTBEAT_EVERY = 2


def crash_bound() -> int:
    """Most items a worker crash can make a stepped job repeat: those advanced during one
    checkpoint interval (at most ``interval * RATE + 1``), plus the one in flight."""
    return int(CHECKPOINT_INTERVAL * RATE) + 2


def tips_wait() -> timedelta:
    return timedelta(seconds=float(os.environ.get(TIPS_WAIT_VAR, "300")))


class SendWelcomeEmail(Job):
    """Welcome a new user; on success, schedule the tips and tell an admin."""

    queue = "mailers"
    retry = Retry(attempts=5, on=(ConnectionError,))

    def perform(self, user_id: int) -> str:
        with _app() as conn:
            app.send_email(conn, user_id, "welcome", self.id)
        return f"welcome email sent to user {user_id}"

    def continuations(self, user_id: int) -> None:
        SendOnboardingTips.set(wait=tips_wait()).perform_later(user_id)
        NotifyAdmin.perform_later(user_id)


class SendOnboardingTips(Job):
    queue = "mailers"

    def perform(self, user_id: int) -> None:
        with _app() as conn:
            app.send_email(conn, user_id, "onboarding-tips", self.id)

    def continuations(self, user_id: int) -> None:
        TrackSignupMetrics.perform_later(user_id)


class NotifyAdmin(Job):
    def perform(self, user_id: int) -> None:
        with _app() as conn:
            app.record_event(conn, "admin-notified", str(user_id))


class TrackSignupMetrics(Job):
    queue = "metrics"

    def perform(self, user_id: int) -> None:
        with _app() as conn:
            app.record_event(conn, "signup-tracked", str(user_id))


class BulkWelcomeEmail(Job):
    """Send the welcome email to every user, resumably: the cursor is the next user id."""

    queue = "mailers"
    checkpoint_interval = CHECKPOINT_INTERVAL

    def perform(self, batch: str) -> dict[str, Any]:
        self.conn = app.connect()  # code outside steps runs on every execution
        try:
            self.step("initialize_scope", self.initialize_scope)
            self.step("send_emails", self.send_emails)
            self.step("finalize")
        finally:
            self.conn.close()
        return {"batch": batch, "users": self.state["users"]}

    def initialize_scope(self) -> None:
        first, last, count = self.conn.execute("SELECT min(id), max(id), count(*) FROM users").fetchone()
        self.state.update(first=first, last=last, users=count)

    def send_emails(self, step: Step) -> None:
        step.total = self.state["users"]
        start = step.cursor if step.cursor is not None else self.state["first"]
        ids = self.conn.execute("SELECT id FROM users WHERE id >= ? ORDER BY id", (start,)).fetchall()
        for (user_id,) in ids:
            app.send_email(self.conn, user_id, "bulk-welcome", self.id)
            time.sleep(1 / RATE)
            step.advance(from_=user_id)

    def finalize(self) -> None:
        app.record_event(self.conn, "bulk-finished", self.id)

    def continuations(self, batch: str) -> None:
        TrackBulkEmailMetrics.perform_later(batch)


class TrackBulkEmailMetrics(Job):
    queue = "metrics"

    def perform(self, batch: str) -> None:
        with _app() as conn:
            sent = app.distinct_recipients(conn, "bulk-welcome")
            app.record_event(conn, "bulk-tracked", f"{batch}: {sent} users")


class ProcessImport(Job):
    """The seed's import: initialize, process every row from the cursor, finalize."""

    checkpoint_interval = CHECKPOINT_INTERVAL

    def unique_key(self, import_id: int) -> str:
        return f"import:{import_id}"

    def perform(self, import_id: int) -> None:
        self.import_id = import_id
        self.conn = app.connect()
        try:
            self.step("initialize", lambda: self._set_status("processing"))
            self.step("process", self.process_records)
            self.step("finalize")
        finally:
            self.conn.close()

    def process_records(self, step: Step) -> None:
        step.total = self.conn.execute(
            "SELECT count(*) FROM import_rows WHERE import_id = ?", (self.import_id,)
        ).fetchone()[0]
        rows = self.conn.execute(
            "SELECT id FROM import_rows WHERE import_id = ? AND id >= ? ORDER BY id", (self.import_id, step.cursor or 0)
        ).fetchall()
        for (row_id,) in rows:
            app.import_record(self.conn, row_id, self.id)
            time.sleep(1 / RATE)
            step.advance(from_=row_id)

    def finalize(self) -> None:
        self._set_status("completed")

    def _set_status(self, status: str) -> None:
        self.conn.execute("UPDATE imports SET status = ? WHERE id = ?", (status, self.import_id))


class MakeThumbnail(Job):
    """One member of the album's batch: makes (records) the thumbnail of one image."""

    def perform(self, album_id: int, image_id: int) -> str:
        time.sleep(0.05)  # an image takes a moment
        with _app() as conn:
            app.record_event(conn, "thumbnail", f"{album_id}:{image_id}")
        return f"thumb-{image_id}.jpg"


class PublishAlbum(Job):
    """The batch's ``on_success`` callback: runs once, after every thumbnail was made."""

    def perform(self, album_id: int) -> str:
        with _app() as conn:
            made = len([e for e in app.events_of(conn, "thumbnail") if e.startswith(f"{album_id}:")])
            app.record_event(conn, "album-published", f"{album_id}: {made} thumbnails")
        return f"album {album_id} published with {made} thumbnails"


class Heartbeat(Job):
    """The demo's periodic job: records the tick it was enqueued for. Each demo worker runs
    the schedule, one after the other (stopped, killed, started again): every tick is
    recorded once."""

    queue = "metrics"

    def perform(self) -> str:
        tick = self.scheduled_for.isoformat() if self.scheduled_for else "-"
        with _app() as conn:
            app.record_event(conn, "heartbeat", tick)
        return tick


# Declared beside its job; a worker that imports this module runs it. missed="all": a tick
# that came due while no worker ran (between two workers of the demo) is still enqueued.
onward.schedule("demo-heartbeat", Heartbeat, every=timedelta(seconds=HEARTBEAT_EVERY), missed="all", overlap=True)


@contextmanager
def _app() -> Iterator[sqlite3.Connection]:
    """A short-lived connection to the application database."""
    conn = app.connect()
    try:
        yield conn
    finally:
        conn.close()
