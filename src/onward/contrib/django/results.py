"""Onward job records as Django ``TaskResult`` objects.

============================  ==============
Onward state                  Django status
============================  ==============
``enqueued``                  ``READY`` (also while waiting for ``run_after`` or a retry)
``running``                   ``RUNNING``
``succeeded``                 ``SUCCESSFUL``
``failed``, ``discarded``,    ``FAILED``
``cancelled``
============================  ==============

``errors`` holds the last failed try's error (Onward keeps the last one): its exception
class path, read from the last line of the stored traceback, and the traceback itself.
``worker_ids`` has one entry per try, so ``attempts`` counts the tries; the worker of the
running try is known, earlier ones are recorded as ``"unknown"``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from onward import OnwardError
from onward.contrib.django.compat import (
    DEFAULT_TASK_BACKEND_ALIAS,
    Task,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
)
from onward.records import JobRecord

__all__ = ["STATUSES", "exception_path", "is_task_job", "load_task", "task_result"]

STATUSES: dict[str, TaskResultStatus] = {
    "enqueued": TaskResultStatus.READY,
    "running": TaskResultStatus.RUNNING,
    "succeeded": TaskResultStatus.SUCCESSFUL,
    "failed": TaskResultStatus.FAILED,
    "discarded": TaskResultStatus.FAILED,
    "cancelled": TaskResultStatus.FAILED,
}
FINISHED = frozenset({TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED})

#: The module of the jobs that run tasks (``onward.contrib.django.jobs:RunTask`` and its kind).
JOBS_MODULE = "onward.contrib.django.jobs"
UNKNOWN_WORKER = "unknown"

#: An error recorded without a traceback ("worker lost: lease expired") is reported as this class.
_FALLBACK_CLASS = f"{OnwardError.__module__}.{OnwardError.__qualname__}"
_CLASS_LINE = re.compile(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?::|$)")


def is_task_job(record: JobRecord) -> bool:
    return record.job_class.startswith(JOBS_MODULE + ":")


def load_task(path: str) -> Task[..., Any]:
    """The task stored as ``path`` (``module.function``); ``ImportError`` naming it."""
    try:
        task = import_string(path)
    except ImportError as exc:
        raise ImportError(f"cannot import the task {path}: {exc}") from exc
    if not isinstance(task, Task):
        raise ImportError(f"{path} is not a task (decorate the function with @task)")
    return task


def exception_path(error: str) -> str:
    """The exception class path in an error Onward stored: the last line that names a class
    (``module.Type: message``) right after the traceback's frames, or at the very start."""
    lines = error.splitlines()
    found = None
    for i, line in enumerate(lines):
        if (i == 0 or lines[i - 1].startswith("  ")) and (match := _CLASS_LINE.match(line)):
            found = match.group(1)
    return found or _FALLBACK_CLASS


def task_result(record: JobRecord) -> TaskResult[..., Any]:
    """The ``TaskResult`` of the job ``record`` (``TaskResultDoesNotExist`` if it is not a task's)."""
    if not is_task_job(record) or len(record.args) != 3:
        raise TaskResultDoesNotExist(f"job {record.id} is an Onward job ({record.job_class}), not a task")
    path, args, kwargs = record.args
    alias = record.kwargs.get("backend", DEFAULT_TASK_BACKEND_ALIAS)
    try:
        task = load_task(path)
    except ImportError as exc:
        raise TaskResultDoesNotExist(f"task result {record.id}: {exc}") from exc
    task = task.using(
        priority=-record.priority,
        queue_name=record.queue,
        backend=alias,
        run_after=_local(record.kwargs.get("run_after")),
    )
    status = STATUSES.get(str(record.state), TaskResultStatus.READY)
    result = TaskResult(
        task=task,
        id=record.id,
        status=status,
        enqueued_at=_local(record.enqueued_at),
        started_at=_local(record.started_at),
        finished_at=_local(record.finished_at) if status in FINISHED else None,
        last_attempted_at=_local(record.started_at),
        args=args,
        kwargs=kwargs,
        backend=alias,
        errors=errors(record.error),
        worker_ids=worker_ids(record),
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", record.result)
    return result


def errors(error: str | None) -> list[TaskError]:
    if not error:
        return []
    return [TaskError(exception_class_path=exception_path(error), traceback=error)]


def worker_ids(record: JobRecord) -> list[str]:
    """One entry per try; the last one names the worker running it now, when one does."""
    if record.attempts <= 0:
        return []
    return [UNKNOWN_WORKER] * (record.attempts - 1) + [record.worker_id or UNKNOWN_WORKER]


def _local(value: datetime | None) -> datetime | None:
    """An aware UTC time as Django expects it: aware with ``USE_TZ``, else naive local time."""
    if value is None or settings.USE_TZ:
        return value
    return timezone.make_naive(value)
