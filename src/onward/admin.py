"""Queries and actions for operators, shared by the ``onward`` command and the dashboard.

Everything here works on any :class:`~onward.stores.base.Store` and returns frozen values, so
a user interface only formats them::

    from onward import admin, connect

    ops = admin.Admin(connect())
    page = ops.jobs(state="failed", limit=20)          # newest first
    older = ops.jobs(state="failed", before=page.next)  # the next page (keyset paging)
    detail = ops.job(page.jobs[0].id)                    # steps with rate and ETA, the chain tree
    ops.retry(detail.job.id)

Job ids may be given in full or as a unique prefix (at least :data:`MIN_PREFIX` characters),
which is handy when typing them. Unknown ids raise :class:`JobNotFound` (a ``KeyError``);
actions a job's state forbids raise :class:`ActionRefused`. Both are ``OnwardError``, with a
one-line message meant for the user.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from onward import lifecycle
from onward.admin_batches import BatchAdmin, BatchNotFound, BatchView
from onward.admin_limits import HeldCount, LimitAdmin
from onward.admin_queues import QueueAdmin, QueueView
from onward.admin_schedules import ScheduleAdmin, ScheduleNotFound, ScheduleView
from onward.admin_text import decode_arguments, format_duration, parse_duration, to_plain
from onward.admin_values import (
    STATES,
    JobDetail,
    JobPage,
    MinuteCount,
    QueueCounts,
    ReadyQueue,
    RunningJob,
    Stats,
    StepProgress,
    TreeNode,
    current_step,
    job_ended,
    step_progress,
)
from onward.errors import OnwardError
from onward.handles import JobHandle
from onward.job import Configured
from onward.lifecycle import Action, CancelEffect
from onward.options import Options
from onward.records import FINISHED_STATES, JobRecord, State
from onward.registry import load_job_class
from onward.rerun_continuations import RerunContinuations
from onward.stores.base import JobFilter, Store

__all__ = [
    "CONTINUATION_FAILED",
    "HeldCount",
    "MIN_PREFIX",
    "STATES",
    "ActionRefused",
    "Admin",
    "BatchNotFound",
    "BatchView",
    "JobDetail",
    "JobNotFound",
    "JobPage",
    "MinuteCount",
    "QueueCounts",
    "QueueView",
    "ReadyQueue",
    "RunningJob",
    "ScheduleNotFound",
    "ScheduleView",
    "Stats",
    "StepProgress",
    "TreeNode",
    "actions",
    "current_step",
    "decode_arguments",
    "format_duration",
    "parse_duration",
    "step_progress",
    "to_plain",
]

#: The shortest id prefix accepted in place of a full id.
MIN_PREFIX = 6
#: A page never holds more jobs than this, whatever ``limit`` asks.
MAX_PAGE = 1000
#: The jobs-list filter that keeps succeeded jobs whose continuations raised (beside the states).
CONTINUATION_FAILED = "continuation_failed"
#: A chain tree stops growing past this many jobs (``TreeNode.truncated`` says so).
MAX_TREE = 200


class JobNotFound(OnwardError, KeyError):
    """No job has this id (or id prefix). Also a ``KeyError``, like ``onward.get_job``."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "job not found"


class ActionRefused(OnwardError):
    """The job's state does not allow the action (e.g. retrying a running job)."""


# -- the facade -----------------------------------------------------------------------------


class Admin(BatchAdmin, ScheduleAdmin, QueueAdmin, LimitAdmin):
    """Operator queries and actions over one store. Cheap to create; holds no state but it.
    Schedules: see :class:`onward.admin_schedules.ScheduleAdmin`; queues (counts, pausing):
    :class:`onward.admin_queues.QueueAdmin`; batches: :class:`onward.admin_batches.BatchAdmin`; limits
    (why a job waits, held jobs per key): :class:`onward.admin_limits.LimitAdmin`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- finding jobs ------------------------------------------------------------------------
    def jobs(
        self,
        *,
        state: str | None = None,
        queue: str | None = None,
        job_class: str | None = None,
        search: str | None = None,
        parent_id: str | None = None,
        before: str | None = None,
        limit: int = 50,
        continuation_failed: bool = False,
        schedule_key: str | None = None,
    ) -> JobPage:
        """Jobs matching every given filter, newest first, at most ``limit`` (capped at
        :data:`MAX_PAGE`). ``job_class`` is an import path (``module:ClassName``), ``search``
        an id or id prefix, ``before`` the ``next`` of the previous page,
        ``continuation_failed`` keeps only succeeded jobs whose ``continuations`` raised,
        ``schedule_key`` the jobs that schedule enqueued. ``ValueError`` for an unknown
        state, a class name without its module, or a limit below 1."""
        if state is not None and state not in STATES:
            raise ValueError(f"unknown state {state!r}; use one of {', '.join(STATES)}")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if job_class and ":" not in job_class:
            raise ValueError(f"a job class is given by its import path, module:ClassName; got {job_class!r}")
        limit = min(limit, MAX_PAGE)
        prefix = search.strip().lower() if search and search.strip() else None
        found = self.store.list_jobs(
            JobFilter(
                state=state,
                queue=queue or None,
                job_class=job_class or None,
                parent_id=parent_id,
                before=before,
                limit=limit + 1,
                id_prefix=prefix,
                continuation_failed=continuation_failed,
                schedule_key=schedule_key or None,
            )
        )
        page = found[:limit]
        return JobPage(page, page[-1].id if len(found) > limit else None)

    def resolve(self, job_id: str) -> str:
        """The full id of the job named by ``job_id`` (a full id or a unique prefix)."""
        text = job_id.strip().lower()
        if not text:
            raise JobNotFound("no job id given")
        try:
            return self.store.get(text).id
        except KeyError:
            pass
        if len(text) >= MIN_PREFIX:
            found = self.store.list_jobs(JobFilter(id_prefix=text, limit=2))
            if len(found) == 1:
                return found[0].id
            if len(found) > 1:
                raise JobNotFound(f"job id prefix {job_id!r} is ambiguous; give more characters")
        raise JobNotFound(f"no job with id {job_id!r}")

    def get(self, job_id: str) -> JobRecord:
        """The job's record (full id or unique prefix)."""
        full = self.resolve(job_id)
        try:
            return self.store.get(full)
        except KeyError:  # purged in between
            raise JobNotFound(f"no job with id {job_id!r}") from None

    def job(self, job_id: str) -> JobDetail:
        """The job, its steps' progress, and its continuation chain as a tree."""
        record = self.get(job_id)
        now = time.time()
        ended = job_ended(record)
        steps = [step_progress(s, now, ended) for s in record.steps]
        return JobDetail(record, steps, self.tree(record), self.waiting_reason(record))

    def tree(self, record: JobRecord) -> TreeNode:
        """The chain ``record`` belongs to, from its first job down, always containing
        ``record``; about :data:`MAX_TREE` jobs at most (in a longer chain it starts
        :data:`MAX_TREE` // 2 ancestors up, and ``truncated`` marks the cut branches)."""
        root = record
        path = {record.id}  # the jobs from the root down to record: never cut
        while root.parent_id is not None and root.parent_id not in path and len(path) <= MAX_TREE // 2:
            try:
                parent = self.store.get(root.parent_id)
            except KeyError:
                break  # the parent was purged: the chain starts here
            path.add(parent.id)
            root = parent
        return self._subtree(root, [MAX_TREE], path)

    def _subtree(self, record: JobRecord, budget: list[int], path: set[str]) -> TreeNode:
        budget[0] -= 1
        children: list[TreeNode] = []
        truncated = False
        for child_id in record.children:
            if budget[0] <= 0 and child_id not in path:
                truncated = True
                continue
            try:
                child = self.store.get(child_id)
            except KeyError:
                budget[0] -= 1
                children.append(TreeNode(child_id, "?", "purged", missing=True))
                continue
            children.append(self._subtree(child, budget, path))
        return TreeNode(record.id, record.job_class, str(record.state), children, truncated=truncated)

    def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """Block until the job is succeeded, failed or discarded, and return its record;
        ``TimeoutError`` after ``timeout`` seconds."""
        return JobHandle(self.resolve(job_id), self.store).wait(timeout)

    def running(self, limit: int = 100) -> list[RunningJob]:
        """Running jobs (newest first) with the step each is in."""
        now = time.time()
        jobs = self.store.list_jobs(JobFilter(state=State.RUNNING.value, limit=min(limit, MAX_PAGE)))
        return [RunningJob(j, current_step(j, now)) for j in jobs]

    # -- counting ----------------------------------------------------------------------------
    def counts(self) -> list[QueueCounts]:
        """Jobs per queue (sorted by name) and state; every state appears, zero or not."""
        per_queue: dict[str, dict[str, int]] = {}
        for row in self.store.count_jobs():
            counts = per_queue.setdefault(row.queue, dict.fromkeys(STATES, 0))
            counts[row.state] = counts.get(row.state, 0) + row.count
        return [QueueCounts(q, per_queue[q]) for q in sorted(per_queue)]

    def ready_queues(self) -> list[ReadyQueue]:
        """Each queue with jobs ready to run now: how many, and how long the one due first
        has been waiting since it became due (seconds)."""
        now = self.store.now()
        return [ReadyQueue(q.queue, q.ready, max(0.0, now - q.oldest_due)) for q in self.store.ready_by_queue()]

    def throughput(self, minutes: int = 15) -> list[MinuteCount]:
        """Jobs finished per minute over the last ``minutes`` minutes: 60-second windows
        ending now, oldest first; windows with nothing finished count zero."""
        if minutes < 1:
            raise ValueError(f"minutes must be at least 1, got {minutes}")
        now = self.store.now()
        buckets = [dict.fromkeys(("succeeded", "failed", "discarded", "cancelled"), 0) for _ in range(minutes)]
        for row in self.store.finished_per_minute(minutes):
            if 0 <= row.minutes_ago < minutes and row.state in buckets[row.minutes_ago]:
                buckets[row.minutes_ago][row.state] += row.count
        return [
            MinuteCount(
                datetime.fromtimestamp(now - 60 * (ago + 1), UTC),
                succeeded=buckets[ago]["succeeded"],
                failed=buckets[ago]["failed"],
                discarded=buckets[ago]["discarded"],
                cancelled=buckets[ago]["cancelled"],
            )
            for ago in reversed(range(minutes))
        ]

    def stats(self, minutes: int = 15) -> Stats:
        """Counts per queue and state, totals per state, and the throughput of the last
        ``minutes`` minutes (the last window is the last 60 seconds)."""
        queues = self.counts()
        totals = dict.fromkeys(STATES, 0)
        for q in queues:
            for state, n in q.counts.items():
                totals[state] += n
        failed = self.store.count_continuation_failed()
        return Stats(queues, totals, self.throughput(minutes), failed, tuple(self.held_keys()))

    # -- actions -----------------------------------------------------------------------------
    def retry(self, job_id: str) -> JobRecord:
        """Run a failed (or discarded) job again now, keeping its progress (completed steps
        are skipped, the step in progress resumes at its cursor); its attempts start again
        from zero."""
        record = self.get(job_id)
        _check_allowed(record, Action.RETRY)
        if not self.store.retry_failed_job(record.id):
            now = self.store.get(record.id)
            _check_allowed(now, Action.RETRY)
            raise ActionRefused(
                f"job {record.id} was not retried: another job with its unique key {now.unique_key!r}"
                " is enqueued or running"
            )
        return self.store.get(record.id)

    def retry_continuations(self, job_id: str) -> JobHandle:
        """Run the ``continuations`` of a succeeded job again, after they raised: a worker
        runs the block (where the application's code is), and its jobs are committed in one
        transaction with the job's ``continuation_error`` cleared. Returns the handle of the
        job that does it; ``ActionRefused`` when the job has no failed continuations."""
        record = self.get(job_id)
        if record.state != State.SUCCEEDED or record.continuation_error is None:
            raise ActionRefused(f"job {record.id} has no failed continuations to run again")
        new = Configured(RerunContinuations, Options()).new_job([record.id], {})
        [rerun_id] = self.store.enqueue([new])
        return JobHandle(rerun_id, self.store)

    def rerun_continuations(self, job_id: str) -> JobRecord:
        """:meth:`retry_continuations`, returning the job's record (for the interfaces)."""
        self.retry_continuations(job_id)
        return self.get(job_id)

    def discard(self, job_id: str) -> JobRecord:
        """Discard an enqueued or failed job: it will never run (again)."""
        record = self.get(job_id)
        _check_allowed(record, Action.DISCARD)
        if not self.store.discard_job(record.id):
            _check_allowed(self.store.get(record.id), Action.DISCARD)
        return self.store.get(record.id)

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a job (see ``JobHandle.cancel``) and return its record: an enqueued one is
        ``cancelled`` at once, a running one gets a cancellation request, a finished one is
        left as it is."""
        return self.cancel_job(job_id)[1]

    def cancel_job(self, job_id: str) -> tuple[CancelEffect, JobRecord]:
        """:meth:`cancel`, also telling what it did (for the interfaces' messages)."""
        full = self.resolve(job_id)
        try:
            effect = self.store.cancel_job(full)
        except KeyError:  # purged in between
            raise JobNotFound(f"no job with id {job_id!r}") from None
        return effect, self.store.get(full)

    def enqueue(
        self,
        class_path: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        wait: timedelta | float | None = None,
    ) -> JobHandle:
        """Enqueue ``module:Class`` with these arguments, as ``perform_later`` would: the
        class is imported (from ``sys.path``, as a worker would), so its queue, retry policy
        and unique key apply. ``ValueError`` for a malformed path,
        ``onward.JobClassNotFound`` when it cannot be imported, ``SerializationError``
        for arguments that cannot be stored."""
        if ":" not in class_path or class_path.startswith(":") or class_path.endswith(":"):
            raise ValueError(f"job class must be written module:ClassName, got {class_path!r}")
        cls = load_job_class(class_path)
        configured = Configured(cls, Options.build(wait=wait, queue=queue, priority=priority))
        new = configured.new_job(list(args), dict(kwargs or {}))
        [job_id] = self.store.enqueue([new])
        return JobHandle(job_id, self.store)

    def purge(
        self,
        older_than: timedelta | float,
        states: Iterable[str] = ("succeeded",),
        batch_size: int = 1000,
    ) -> int:
        """Delete finished jobs in ``states`` that finished more than ``older_than`` ago,
        ``batch_size`` at a time (short transactions, so workers keep running); returns how
        many were deleted."""
        chosen = list(dict.fromkeys(states))
        finished = {s.value for s in FINISHED_STATES}
        for state in chosen:
            if state not in finished:
                raise ValueError(f"cannot purge {state!r} jobs; only {', '.join(sorted(finished))} jobs can be purged")
        if not chosen:
            raise ValueError("no state to purge")
        seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else float(older_than)
        if seconds < 0:
            raise ValueError("older_than must not be negative")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        cutoff = self.store.now() - seconds
        total = 0
        while True:
            deleted = self.store.purge_finished(chosen, cutoff, batch_size)
            total += deleted
            if deleted < batch_size:
                return total


def actions(record: JobRecord) -> frozenset[str]:
    """The actions (``"retry"``, ``"discard"``, ``"cancel"``) an operator may take on ``record`` now."""
    return frozenset(a.value for a in lifecycle.actions_for(record.state))


_DONE = {Action.RETRY: "retried", Action.DISCARD: "discarded", Action.CANCEL: "cancelled"}


def _check_allowed(record: JobRecord, action: Action) -> None:
    """``ActionRefused`` naming the states that allow ``action`` when ``record``'s does not."""
    if lifecycle.allows(record.state, action):
        return
    allowed = lifecycle.joined(lifecycle.states_allowing(action))
    raise ActionRefused(f"job {record.id} is {record.state}; only {allowed} jobs can be {_DONE[action]}")
