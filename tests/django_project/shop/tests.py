"""The shop's own tests, run by ``manage.py test`` (Django's test runner, test database)."""

from django.test import TransactionTestCase

from onward.testing import drain
from shop.models import Event
from shop.tasks import record


class TaskTests(TransactionTestCase):
    # Not TestCase: its transaction would hold enqueued jobs (on PostgreSQL they join it)
    # where the worker that drain() runs cannot see them.
    def test_a_task_runs_in_a_test(self):
        result = record.enqueue("in a test")
        assert drain() == 1
        result.refresh()
        assert result.status == "SUCCESSFUL"
        assert list(Event.objects.values_list("label", flat=True)) == ["in a test"]
