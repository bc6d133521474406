"""Running a Django project's tests with Onward::

    TEST_RUNNER = "onward.contrib.django.testing.DiscoverRunner"

Onward's store follows Django's test database like Django's own connections do. PostgreSQL
refuses to drop a database still in use, so this runner closes the store before Django
drops its test databases (and after it created them, in case something opened the store
earlier), and closes the Django connections of each job a worker thread ran
(``onward.testing.drain()``) when the job ends.
"""

from __future__ import annotations

from typing import Any

from django.test.runner import DiscoverRunner as DjangoDiscoverRunner

from onward.contrib.django import store
from onward.contrib.django.connections import around_jobs

__all__ = ["DiscoverRunner"]


class DiscoverRunner(DjangoDiscoverRunner):
    """Django's test runner, closing Onward's connections before the test databases go."""

    def setup_test_environment(self, **kwargs: Any) -> None:
        super().setup_test_environment(**kwargs)
        self._around_jobs = around_jobs(close=True)
        self._around_jobs.__enter__()

    def teardown_test_environment(self, **kwargs: Any) -> None:
        self._around_jobs.__exit__(None, None, None)
        super().teardown_test_environment(**kwargs)

    def setup_databases(self, **kwargs: Any) -> Any:
        config = super().setup_databases(**kwargs)
        store.close_all()  # the next use opens it on the test database
        return config

    def teardown_databases(self, old_config: Any, **kwargs: Any) -> None:
        store.close_all()
        super().teardown_databases(old_config, **kwargs)
