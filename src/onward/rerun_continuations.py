"""Running the ``continuations`` block of a succeeded job again, after it raised.

When ``continuations`` raises, the parent stays ``succeeded`` with a ``continuation_error``
and none of the block's jobs exist. Once the cause is fixed, an operator asks for the block to
run again (``onward retry --continuations ID``, the dashboard, ``Admin.retry_continuations``):
that enqueues a :class:`RerunContinuations` job, so the block runs in a worker, where the
application's code is importable, like the first time. Its jobs are committed in one
transaction with the parent's ``continuation_error`` cleared, guarded so that two re-runs
cannot both commit; a ``wait`` in the block counts from that commit.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from onward import collecting, connecting, events
from onward.errors import OnwardError, format_error
from onward.job import Job
from onward.registry import load_job_class
from onward.retry import Retry
from onward.stores.base import Store

__all__ = ["RerunContinuations", "run_continuations_again"]


class RerunContinuations(Job):
    """Runs the continuations of succeeded job ``job_id`` again (see the module's docstring)."""

    queue = "default"
    retry = Retry(attempts=1)

    def unique_key(self, job_id: str) -> str:
        return f"onward:rerun-continuations:{job_id}"

    def perform(self, job_id: str) -> dict[str, Any]:
        return run_continuations_again(self._store or connecting.default(), job_id)


def run_continuations_again(store: Store, job_id: str) -> dict[str, Any]:
    """Run the block and commit its jobs (or its new error); returns the children's ids."""
    record = store.get(job_id)
    if record.state != "succeeded" or record.continuation_error is None:
        return {"children": [], "already": True}
    cls = load_job_class(record.job_class)
    parent = cls()
    parent.id = record.id
    parent.attempt = record.attempts
    parent.resumptions = record.resumptions
    parent.state = dict(record.job_state)
    parent.result = record.result
    args, kwargs = record.args, record.kwargs
    error: str | None = None
    with collecting.collecting(store) as pending:
        try:
            outcome = parent.continuations(*args, **kwargs)
            if inspect.isawaitable(outcome):
                asyncio.run(_awaited(outcome))
        except Exception as exc:
            error = format_error(exc)
    ok = error is None
    ids = store.commit_continuations(job_id, pending.jobs if ok else [], error, pending.batches if ok else ())
    if ids is None:
        return {"children": [], "already": True}
    if error is not None:
        raise OnwardError(f"the continuations of job {job_id} raised again: {error.splitlines()[-1]}")
    pending.resolve(ids)
    events.enqueued(pending.jobs + pending.members, ids)
    return {"children": ids[: len(pending.jobs)]}


async def _awaited(outcome: Any) -> None:
    await outcome
