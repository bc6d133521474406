"""``OnwardTaskBackend``: Django's Tasks framework, with Onward storing and running the tasks.

::

    TASKS = {"default": {"BACKEND": "onward.contrib.django.OnwardTaskBackend"}}

A task enqueues as an Onward job (:mod:`onward.contrib.django.jobs`): its queue is the
task's ``queue_name``, its priority Django's negated (Django runs higher first, Onward
lower), and ``run_after`` becomes the time it may start. ``OPTIONS``:

- ``database_url``: the store; without it Onward follows Django's ``default`` database
  (:mod:`onward.contrib.django.store`).
- ``RETRY``: ``{"attempts": N, "backoff": seconds}``; a task is tried once without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from inspect import iscoroutinefunction
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import import_string

from onward import collecting, events
from onward.contrib.django import jobs, results
from onward.contrib.django import store as stores
from onward.contrib.django.compat import (
    DEFAULT_TASK_BACKEND_ALIAS,
    BaseTaskBackend,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_enqueued,
)
from onward.ids import new_id
from onward.stores.base import NewJob

__all__ = ["OnwardTaskBackend", "project_store", "retry_options"]

APP = "onward.contrib.django"


class OnwardTaskBackend(BaseTaskBackend):
    """A backend for Django's Tasks framework that stores tasks as Onward jobs."""

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.retry = retry_options(self.options.get("RETRY"), f"TASKS[{alias!r}]['OPTIONS']['RETRY']")
        self.store = stores.for_options(self.options)

    # -- enqueueing --------------------------------------------------------------------
    def enqueue(self, task: Task[Any, Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> TaskResult[Any, Any]:
        """Store the task as an Onward job. A bad argument raises here, before anything is
        stored; inside ``transaction.atomic()`` on PostgreSQL the job commits with the block."""
        self.validate_task(task)
        result: TaskResult[Any, Any] = TaskResult(  # refuses arguments that are not plain JSON
            task=task,
            id=new_id(),
            status=TaskResultStatus.READY,
            enqueued_at=None,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        _insert(self.store, self._new_job(task, result))
        object.__setattr__(result, "enqueued_at", timezone.now())
        task_enqueued.send(sender=type(self), task_result=result)
        return result

    def _new_job(self, task: Task[Any, Any], result: TaskResult[Any, Any]) -> NewJob:
        attempts, backoff = self.retry
        job = jobs.job_class(is_async=iscoroutinefunction(task.func), attempts=attempts, backoff=backoff)
        run_after = _aware(task.run_after)
        options: dict[str, Any] = {"backend": self.alias}
        if run_after is not None:
            options["run_after"] = run_after
        configured = job.set(queue=task.queue_name, priority=-task.priority, wait_until=run_after)
        return configured.new_job((task.module_path, result.args, result.kwargs), options, job_id=result.id)

    # -- results -------------------------------------------------------------------------
    def get_result(self, result_id: str) -> TaskResult[Any, Any]:
        """The task's result as the store has it now; ``TaskResultDoesNotExist`` if unknown."""
        try:
            record = self.store.get(result_id)
        except KeyError:
            raise TaskResultDoesNotExist(f"no task result with id {result_id!r}") from None
        return results.task_result(record)

    # -- checks ----------------------------------------------------------------------------
    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        messages: list[checks.CheckMessage] = []
        if not apps.is_installed(APP):
            messages.append(
                checks.Warning(
                    f"{APP} is not in INSTALLED_APPS",
                    hint=f"Add {APP!r} to INSTALLED_APPS: it provides manage.py onward_worker and makes "
                    "Job.perform_later join transaction.atomic() blocks.",
                    id="onward.W001",
                )
            )
        if self.store.database is not None and not _uses_psycopg3():
            messages.append(
                checks.Error(
                    "Onward joins transaction.atomic() through Django's connection, which needs psycopg 3",
                    hint="pip install 'psycopg[binary]' (Django prefers psycopg 3 to psycopg2 when both are "
                    "installed), or give the backend its own store with OPTIONS['database_url'].",
                    id="onward.E001",
                )
            )
        return messages


def project_store() -> stores.DjangoStore:
    """The store of the project's Onward task backend (the one named ``default``, else the
    first), or, without one, the store that follows Django's ``default`` database."""
    tasks: Mapping[str, Any] = getattr(settings, "TASKS", None) or {}
    ours = [alias for alias, params in tasks.items() if _is_onward(params)]
    if ours:
        alias = DEFAULT_TASK_BACKEND_ALIAS if DEFAULT_TASK_BACKEND_ALIAS in ours else ours[0]
        return stores.for_options(tasks[alias].get("OPTIONS") or {})
    return stores.for_options({})


def _is_onward(params: Any) -> bool:
    path = params.get("BACKEND") if isinstance(params, Mapping) else None
    if not isinstance(path, str):
        return False
    try:
        cls = import_string(path)
    except ImportError:
        return False
    return isinstance(cls, type) and issubclass(cls, OnwardTaskBackend)


def retry_options(value: Any, where: str) -> tuple[int, int | None]:
    """``{"attempts": N, "backoff": seconds}`` (or ``N``) as ``(attempts, backoff)``;
    ``(1, None)`` for ``None``."""
    if value is None:
        return 1, None
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"attempts": value}
    if not isinstance(value, Mapping) or not set(value) <= {"attempts", "backoff"}:
        raise ImproperlyConfigured(
            f'{where} must be {{"attempts": N}} or {{"attempts": N, "backoff": S}}, got {value!r}'
        )
    attempts, backoff = value.get("attempts", 1), value.get("backoff")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 999_999:
        raise ImproperlyConfigured(f"{where}: attempts must be a whole number from 1 to 999999, got {attempts!r}")
    if backoff is not None and not _whole_seconds(backoff):
        raise ImproperlyConfigured(f"{where}: backoff must be whole seconds from 0 to 9999999, got {backoff!r}")
    return attempts, None if backoff is None else int(backoff)


def _whole_seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == int(value) and 0 <= value < 1e7


def _aware(value: datetime | None) -> datetime | None:
    """``run_after`` as an aware time: a naive one (allowed without ``USE_TZ``) is in
    Django's current time zone."""
    if value is None or timezone.is_aware(value):
        return value
    return timezone.make_aware(value)


def _insert(store: stores.DjangoStore, job: NewJob) -> None:
    """Insert ``job`` as ``Job.perform_later`` would: with the jobs a collecting block on
    this store gathers (continuations, ``onward.transaction``), inside an ``atomic()`` block
    it can join, else at once; announced as ``enqueued`` once inserted."""
    pending = collecting.current()
    if pending is not None and store.is_(pending.store):
        collecting.gather((job,))
        return
    insert = collecting.joined(store.as_store())
    ids = store.enqueue([job]) if insert is None else insert([job])
    events.enqueued([job], ids)


def _uses_psycopg3() -> bool:
    try:
        from django.db.backends.postgresql.psycopg_any import is_psycopg3
    except ImportError:
        return False
    return bool(is_psycopg3)
