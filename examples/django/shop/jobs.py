"""Onward jobs of the shop: a long import in resumable steps, and what follows it."""

from datetime import timedelta

from onward import Job
from shop.models import Order
from shop.tasks import notify_staff


class ImportOrders(Job):
    """Creates orders from a list of emails, 1,000 at a time, resuming where it stopped."""

    def perform(self, emails):
        self.emails = emails
        self.step("create", self.create)

    def create(self, step):
        size = 1000
        step.total = -(-len(self.emails) // size)  # batches, for the progress bar
        for start in range(step.cursor or 0, len(self.emails), size):
            batch = [Order(email=email) for email in self.emails[start : start + size]]
            Order.objects.bulk_create(batch, ignore_conflicts=True)  # a repeated batch does no harm
            step.set(start + size)  # the next batch: a restart resumes there

    def continuations(self, emails):
        # Enqueued only once every step succeeded, in the transaction that records the success.
        notify_staff.enqueue(len(emails))
        FollowUp.set(wait=timedelta(days=7)).perform_later(len(emails))


class FollowUp(Job):
    def perform(self, count):
        return f"{count} orders were imported a week ago"
