"""The seed's ``BulkWelcomeEmailJob``: steps for resumable sending, plus a continuation.

``TrackBulkEmailMetricsJob`` is enqueued in the same transaction that marks the bulk job
succeeded, once, after every step is complete: never after an interruption or a failure.
``BulkWelcomeEmailEachJob`` sends with ``step.each`` over ``iterate.rows`` instead of an
explicit cursor.

    python bulk_welcome_email.py [--each] [USERS]
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import app_db

import onward
from onward import Job, Step, iterate


def users(plan: str, start: int | None, last_id: int) -> Iterator[tuple[int, str]]:
    """Users on ``plan`` with ids from ``start`` up to ``last_id``, in id order, in batches."""
    next_id = start or 0
    while True:
        batch = (
            app_db.connect()
            .execute(
                "SELECT id, email FROM users WHERE plan = ? AND id >= ? AND id <= ? ORDER BY id LIMIT 100",
                (plan, next_id, last_id),
            )
            .fetchall()
        )
        if not batch:
            return
        yield from batch
        next_id = batch[-1][0] + 1


def send_email(user_id: int, email: str) -> None:
    app_db.work()
    app_db.record_effect("welcome_email", user_id)


class TrackBulkEmailMetricsJob(Job):
    """Records how many welcome emails went out (a follow-up job: a continuation)."""

    def perform(self, options: dict[str, Any]) -> int:
        sent = len(set(app_db.effects("welcome_email")))
        app_db.record_effect("bulk_email_metrics", f"{options['plan']}:{sent}")
        return sent


class BulkWelcomeEmailJob(Job):
    """Sends the welcome email to every user on a plan, resumable at the next user."""

    def continuations(self, options: dict[str, Any]) -> None:
        # runs once, after all steps complete; committed with this job's success
        TrackBulkEmailMetricsJob.perform_later(options)

    def perform(self, options: dict[str, Any]) -> int:
        self.options = options
        self.step("initialize_scope", self.initialize_scope)
        self.step("send_emails", self.send_emails)
        self.step("finalize")
        return int(self.state["sent"])

    def initialize_scope(self) -> None:
        # Fix the scope once, in self.state (saved with every checkpoint): users who sign
        # up while the job runs, or between a stop and the resumption, are not included.
        row = (
            app_db.connect()
            .execute("SELECT coalesce(max(id), 0), count(*) FROM users WHERE plan = ?", (self.options["plan"],))
            .fetchone()
        )
        self.state.update(last_user_id=int(row[0]), in_scope=int(row[1]), sent=0)

    def send_emails(self, step: Step) -> None:
        step.total = self.state["in_scope"]
        for user_id, email in users(self.options["plan"], step.cursor, self.state["last_user_id"]):
            send_email(user_id, email)
            self.state["sent"] += 1
            step.advance(from_=user_id)

    def finalize(self) -> None:
        app_db.record_effect("bulk_email_finished", self.options["plan"])


class BulkWelcomeEmailEachJob(BulkWelcomeEmailJob):
    """The same job, sending with ``step.each``: the cursor is the last user id emailed."""

    def send_emails(self, step: Step) -> None:
        step.total = self.state["in_scope"]
        users_in_scope = iterate.rows(
            app_db.connect(),
            "SELECT id, email FROM users WHERE plan = ? AND id <= ?",
            (self.options["plan"], self.state["last_user_id"]),
            key="id",
        )
        for user_id, email in step.each(users_in_scope):
            send_email(user_id, email)
            self.state["sent"] += 1


def main(argv: list[str]) -> None:
    enqueue_only = "--enqueue-only" in argv
    job = BulkWelcomeEmailEachJob if "--each" in argv else BulkWelcomeEmailJob
    args = [a for a in argv if not a.startswith("--")]
    onward.connect()
    app_db.create_users(int(args[0]) if args else 900)
    handle = job.perform_later({"plan": "paid"})
    print(f"job {handle.id} enqueued")
    if enqueue_only:
        return
    from onward.testing import drain

    drain()
    record = handle.refresh()
    [metrics] = record.children
    print(
        f"job {record.state}: {record.result} emails sent; metrics job {metrics}:"
        f" {onward.get_job(metrics).state}, result {onward.get_job(metrics).result}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
