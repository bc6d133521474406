"""The parts of the Django integration that need no project: the store URL from Django's
settings, reading exception classes from stored errors, retry options, the task job
classes, the child command of ``--processes``; and that only its users import Django."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("django")
try:
    import django.tasks  # noqa: F401  (Django 6.0 and later)
except ImportError:
    pytest.importorskip("django_tasks")

from django.core.exceptions import ImproperlyConfigured

from onward.contrib.django import jobs
from onward.contrib.django.backend import retry_options
from onward.contrib.django.management.commands.onward_worker import child_command
from onward.contrib.django.results import exception_path
from onward.contrib.django.store import database_url
from onward.errors import format_error
from onward.registry import job_path, load_job_class

PG = "django.db.backends.postgresql"


@pytest.mark.parametrize(
    ("database", "url"),
    [
        ({"ENGINE": PG, "NAME": "shop"}, "postgresql://@/shop"),
        (
            {"ENGINE": PG, "NAME": "shop", "USER": "app", "PASSWORD": "p@ss:w/rd", "HOST": "db", "PORT": 6432},
            "postgresql://app:p%40ss%3Aw%2Frd@db:6432/shop",
        ),
        (
            {"ENGINE": PG, "NAME": "shop", "USER": "app", "HOST": "/var/run/postgresql"},
            "postgresql://app@/shop?host=%2Fvar%2Frun%2Fpostgresql",
        ),
        ({"ENGINE": PG, "NAME": "shop", "HOST": "::1", "PORT": "5432"}, "postgresql://[::1]:5432/shop"),
        (
            {
                "ENGINE": "django.contrib.gis.db.backends.postgis",
                "NAME": "shop",
                "OPTIONS": {"sslmode": "require", "options": "-c search_path=shop", "isolation_level": 1, "pool": True},
            },
            "postgresql://@/shop?sslmode=require&options=-c%20search_path%3Dshop",
        ),
    ],
)
def test_postgres_url_is_the_same_database(database: dict[str, object], url: str) -> None:
    assert database_url(database) == url


def test_sqlite_file_beside_djangos(tmp_path: object) -> None:
    sqlite = "django.db.backends.sqlite3"
    assert database_url({"ENGINE": sqlite, "NAME": "/srv/app/db.sqlite3"}) == "sqlite:////srv/app/db.onward.sqlite3"
    assert database_url({"ENGINE": sqlite, "NAME": "/srv/app/data.db"}) == "sqlite:////srv/app/data.db.onward.sqlite3"
    memory = database_url({"ENGINE": sqlite, "NAME": "file:memorydb_default?mode=memory&cache=shared"})
    assert memory.startswith("sqlite:////")
    assert memory.endswith("/onward.sqlite3")
    assert database_url({"ENGINE": sqlite, "NAME": ":memory:"}) == memory  # one file per process


def test_other_databases_need_a_database_url() -> None:
    with pytest.raises(ImproperlyConfigured, match="database_url"):
        database_url({"ENGINE": "django.db.backends.mysql", "NAME": "shop"})


def _error(exc: BaseException) -> str:
    try:
        raise exc
    except BaseException as raised:
        return format_error(raised)


class Custom(Exception):
    pass


def _chained() -> RuntimeError:
    try:
        raise KeyError("first")
    except KeyError as first:
        error = RuntimeError("second")
        error.__cause__ = first
        return error


def test_exception_path_from_stored_errors() -> None:
    assert exception_path(_error(ValueError("boom"))) == "builtins.ValueError"
    assert exception_path(_error(ValueError())) == "builtins.ValueError"
    assert exception_path(_error(Custom('two\nlines\n  File "x"'))) == f"{__name__}.Custom"
    assert exception_path(_error(_chained())) == "builtins.RuntimeError"
    assert exception_path("worker lost: lease expired") == "onward.OnwardError"
    assert exception_path("") == "onward.OnwardError"


def test_retry_options() -> None:
    assert retry_options(None, "RETRY") == (1, None)
    assert retry_options(3, "RETRY") == (3, None)
    assert retry_options({"attempts": 5, "backoff": 10}, "RETRY") == (5, 10)
    assert retry_options({"attempts": 2, "backoff": 0.0}, "RETRY") == (2, 0)
    for bad in ({"attempts": 0}, {"attempts": "3"}, {"tries": 3}, {"attempts": 2, "backoff": 1.5}, [3], True):
        with pytest.raises(ImproperlyConfigured, match="RETRY"):
            retry_options(bad, "RETRY")


def test_task_job_classes_by_retry_policy() -> None:
    assert jobs.job_class(is_async=False) is jobs.RunTask
    assert jobs.job_class(is_async=True, attempts=1, backoff=5) is jobs.RunAsyncTask
    variant = jobs.job_class(is_async=True, attempts=4, backoff=30)
    assert variant is jobs.job_class(is_async=True, attempts=4, backoff=30)
    assert issubclass(variant, jobs.RunAsyncTask)
    assert (variant.retry.attempts, variant.retry.backoff) == (4, 30.0)
    path = job_path(variant)
    assert path == "onward.contrib.django.jobs:RunAsyncTaskWith4AttemptsEvery30s"
    assert load_job_class("onward.contrib.django.jobs:RunTaskWith7Attempts").retry.attempts == 7
    with pytest.raises(AttributeError):
        jobs.RunTaskWith0Attempts  # noqa: B018


def test_child_command_repeats_the_options(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setattr(sys, "argv", [__file__, "onward_worker", "--processes", "3"])
    options = {
        "queues": "a,b",
        "concurrency": 4,
        "processes": 3,
        "burst": True,
        "lease_timeout": 5.0,
        "shutdown_timeout": 25.0,
        "max_jobs_per_child": 100,
        "max_memory_per_child": 250.0,
        "imports": ["shop.jobs", "shop.more"],
        "log_level": None,
        "log_format": "json",
        "database_url": None,
        "settings": "shop_project.settings",
        "pythonpath": None,
    }
    command = child_command(options)
    assert command[:3] == [sys.executable, __file__, "onward_worker"]
    assert "--processes" not in command
    text = " ".join(command[3:])
    for part in (
        "--queues a,b",
        "--concurrency 4",
        "--lease-timeout 5.0",
        "--max-jobs-per-child 100",
        "--max-memory-per-child 250.0",
        "--log-format json",
        "--burst",
        "--import shop.jobs --import shop.more",
        "--settings shop_project.settings",
    ):
        assert part in text
    monkeypatch.setattr(sys, "argv", ["/usr/lib/python3/site-packages/django/__main__.py", "onward_worker"])
    assert child_command(options)[:4] == [sys.executable, "-m", "django", "onward_worker"]


def test_the_core_does_not_import_django() -> None:
    code = textwrap.dedent(
        """
        import sys
        import onward, onward.cli, onward.worker, onward.testing, onward.contrib, onward.contrib.django
        loaded = sorted(m for m in sys.modules if m == "django" or m.startswith(("django.", "django_tasks")))
        assert not loaded, loaded
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
