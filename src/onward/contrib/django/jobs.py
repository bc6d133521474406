"""The Onward jobs that run Django task functions.

A task enqueued through :class:`~onward.contrib.django.OnwardTaskBackend` is stored as one
of these jobs, with the task's import path, its arguments and the backend's alias as the
job's arguments. The worker imports the task and calls its function: :class:`RunTask` for a
plain function, :class:`RunAsyncTask` for an ``async def`` one (on the worker's event loop).

Both try a task once, as Django's Tasks promise. A backend configured with
``OPTIONS["RETRY"] = {"attempts": 3, "backoff": 10}`` uses a variant that differs only in
its retry policy, named after it (``RunTaskWith3AttemptsEvery10s``); the variants are made
when first asked for, so a worker imports them by name like any job class.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, cast

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import connections
from django.utils import timezone

from onward import Job, Retry
from onward.contrib.django.compat import (
    DEFAULT_TASK_BACKEND_ALIAS,
    Task,
    TaskContext,
    TaskError,
    TaskResultStatus,
    normalize_json,
    task_backends,
    task_finished,
    task_started,
)
from onward.contrib.django.results import exception_path, load_task
from onward.errors import format_error

__all__ = ["RunAsyncTask", "RunTask", "job_class"]


class _Run:
    """One try of a task inside a job: its ``TaskResult`` (for ``takes_context`` and
    Django's ``task_started``/``task_finished`` signals) and how the try ended."""

    def __init__(self, job: Job, path: str, alias: str) -> None:
        load_task(path)  # a task that cannot be imported fails with the reason, not a lookup error
        backend = task_backends[alias]
        self.sender = type(backend)
        self.result = backend.get_result(job.id)
        self.task: Task[..., Any] = self.result.task
        self.last_try = job.attempt >= type(job).retry.attempts
        task_started.send(sender=self.sender, task_result=self.result)

    def arguments(self, args: list[Any]) -> list[Any]:
        if self.task.takes_context:
            return [TaskContext(task_result=self.result), *args]
        return list(args)

    def succeeded(self, value: Any) -> None:
        self._finish(TaskResultStatus.SUCCESSFUL)
        object.__setattr__(self.result, "_return_value", value)
        task_finished.send(sender=self.sender, task_result=self.result)

    def failed(self, exc: BaseException) -> None:
        if not self.last_try:
            return  # the job will be tried again: the task has not finished
        self._finish(TaskResultStatus.FAILED)
        error = format_error(exc)
        self.result.errors.append(TaskError(exception_class_path=exception_path(error), traceback=error))
        task_finished.send(sender=self.sender, task_result=self.result)

    def _finish(self, status: TaskResultStatus) -> None:
        object.__setattr__(self.result, "status", status)
        object.__setattr__(self.result, "finished_at", timezone.now())


class RunTask(Job):
    """Runs a Django task function (see the module docs)."""

    retry = Retry(attempts=1)

    def perform(
        self,
        task: str,
        args: list[Any],
        kwargs: dict[str, Any],
        backend: str = DEFAULT_TASK_BACKEND_ALIAS,
        run_after: datetime | None = None,
    ) -> Any:
        run = _Run(self, task, backend)
        try:
            value = normalize_json(run.task.call(*run.arguments(args), **kwargs))
        except Exception as exc:
            run.failed(exc)
            raise
        run.succeeded(value)
        return value


class RunAsyncTask(Job):
    """Runs an ``async def`` Django task function on the worker's event loop.

    Synchronous code it calls through ``sync_to_async`` (the ORM, signal receivers) runs in
    a thread of this job's own, whose database connections are closed when the job ends.
    """

    retry = Retry(attempts=1)

    async def perform(
        self,
        task: str,
        args: list[Any],
        kwargs: dict[str, Any],
        backend: str = DEFAULT_TASK_BACKEND_ALIAS,
        run_after: datetime | None = None,
    ) -> Any:
        async with ThreadSensitiveContext():
            try:
                run = await sync_to_async(_Run)(self, task, backend)
                try:
                    value = normalize_json(await run.task.acall(*run.arguments(args), **kwargs))
                except Exception as exc:
                    await sync_to_async(run.failed)(exc)
                    raise
                await sync_to_async(run.succeeded)(value)
                return value
            finally:
                await sync_to_async(connections.close_all)()


# -- retry variants ------------------------------------------------------------------------

_BASES: dict[str, type[Job]] = {"RunTask": RunTask, "RunAsyncTask": RunAsyncTask}
_VARIANT = re.compile(r"(RunTask|RunAsyncTask)With([1-9][0-9]{0,5})Attempts(?:Every([0-9]{1,7})s)?")
_variants: dict[str, type[Job]] = {}


def job_class(*, is_async: bool, attempts: int = 1, backoff: int | None = None) -> type[Job]:
    """The job class running a task tried ``attempts`` times, waiting ``backoff`` seconds
    between tries (``None``: Onward's exponential backoff)."""
    base = "RunAsyncTask" if is_async else "RunTask"
    if attempts == 1:
        return _BASES[base]
    return _variant(f"{base}With{attempts}Attempts" + ("" if backoff is None else f"Every{backoff}s"))


def _variant(name: str) -> type[Job]:
    cls = _variants.get(name)
    if cls is not None:
        return cls
    match = _VARIANT.fullmatch(name)
    if match is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    base, attempts, every = match.groups()
    retry = Retry(attempts=int(attempts), backoff=None if every is None else float(every))
    namespace = {"retry": retry, "__module__": __name__, "__qualname__": name, "__doc__": _BASES[base].__doc__}
    cls = cast("type[Job]", type(name, (_BASES[base],), namespace))
    return _variants.setdefault(name, cls)


def __getattr__(name: str) -> type[Job]:
    """Variants are attributes of this module, so a worker imports them by path."""
    return _variant(name)
