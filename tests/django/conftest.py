"""Fixtures of the Django tests: the test project on SQLite and PostgreSQL, and a worker
serving it (see django_helpers.py)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator

import pytest
from django_helpers import Project, make_project


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The test project, migrated, on each database."""
    yield from make_project(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def worker(project: Project) -> Iterator[subprocess.Popen[str]]:
    """A ``manage.py onward_worker`` serving the ``default`` queue for the whole module."""
    proc = project.start("onward_worker", "--queues", "default", "--concurrency", "2", "--lease-timeout", "10")
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
