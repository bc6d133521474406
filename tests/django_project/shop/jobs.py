"""An Onward job of the shop: steps over the ORM, and a Django task as its continuation."""

from onward import Job
from shop.models import Event
from shop.tasks import record


class ImportEvents(Job):
    def perform(self, count):
        self.count = count
        self.step("create", self.create)

    def create(self, step):
        for i in range(step.cursor or 0, self.count):
            Event.objects.create(label=f"import:{i}")
            step.advance(from_=i)

    def continuations(self, count):
        record.enqueue(f"imported:{count}")
