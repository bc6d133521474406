"""Group commit of successes: a busy worker marks many jobs succeeded in one transaction.

Committing is most of what finishing a short job costs (a transaction per job, each writing
the same few index pages). A worker therefore hands every success to a :class:`Completer`,
whose thread commits all the successes waiting at that moment in one transaction while the
job threads go on with the next jobs. A job's continuations travel with its success and are
inserted in that same transaction, only for the successes actually written (a job whose
lease was lost inserts none). Continuations with a unique key, whose ids are only known
once their key is looked up, are still completed on their own by the job's thread.

Nothing about durability changes: a success is reported (logged, counted as committed, seen
by ``JobHandle.wait``) only once its transaction has committed, and each row keeps its
lease guard, so a zombie's success is refused exactly as with ``complete``. If the process
dies before the commit, the job runs again after its lease expires, as it would if the
process had died just before a single ``complete``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from onward.stores.base import Checkpoint, Completion, NewJob, WorkerStore

if TYPE_CHECKING:
    from onward.execution import Execution

log = logging.getLogger("onward.worker")

MAX_BATCH = 500
# The completer lets a batch grow for up to LINGER seconds (or to LINGER_BATCH successes)
# before committing it: a success is reported a few milliseconds later, and a busy worker
# commits once per dozens of jobs instead of once per one or two. A worker thread about to
# claim commits what is queued itself (``commit_here``), in the same thread as the claim.
LINGER = 0.005
LINGER_BATCH = 64


def completion(
    execution: Execution, result: str, checkpoint: Checkpoint, continuation_error: str | None, children: list[NewJob]
) -> Completion:
    """The success of ``execution``, to commit with others."""
    claimed = execution.claimed
    return Completion(
        claimed.id,
        claimed.lease_token,
        result,
        checkpoint,
        continuation_error,
        children,
        member=claimed.batch_id is not None,
    )


class Completer:
    """Commits handed-over successes in batches from one thread.

    ``committed(batch, lost)`` is called after each commit with the batch's (execution,
    success) pairs and the ids in ``lost`` whose lease had been taken back (nothing was
    written for those).
    """

    def __init__(
        self, store: WorkerStore, committed: Callable[[list[tuple[Execution, Completion]], set[str]], None]
    ) -> None:
        self.store = store
        self.committed = committed
        self._pending: list[tuple[Execution, Completion]] = []
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._waiting = False  # the thread sleeps until something is queued
        self._urgent = 0  # > 0: someone waits for the queued successes: no lingering
        self._thread = threading.Thread(target=self._run, name="onward-completer", daemon=True)
        self._thread.start()

    def add(
        self,
        execution: Execution,
        result: str,
        checkpoint: Checkpoint,
        continuation_error: str | None,
        children: list[NewJob],
    ) -> None:
        """Queue ``execution``'s success (the ``Execution.defer_completion`` hook)."""
        self.put(execution, completion(execution, result, checkpoint, continuation_error, children))

    def put(self, execution: Execution, item: Completion) -> None:
        """Queue ``item``, the success of ``execution``."""
        with self._cond:
            self._pending.append((execution, item))
            if self._waiting or len(self._pending) >= LINGER_BATCH:
                self._cond.notify_all()

    @property
    def idle(self) -> bool:
        with self._cond:
            return not self._pending and not self._busy

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued success is committed; ``False`` on timeout."""
        with self._cond:
            self._urgent += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)
            finally:
                self._urgent -= 1

    def commit_here(self) -> None:
        """Commit the queued successes on the calling thread, unless the completer's own
        thread is committing: a worker thread about to claim saves a hand-over."""
        with self._cond:
            if self._busy or not self._pending:
                return
            batch = self._take()
        self._commit(batch)

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._waiting = True
                self._cond.wait_for(lambda: self._pending or self._closed)
                self._waiting = False
                if not self._pending:
                    return
                self._cond.wait_for(self._batch_ready, LINGER)
                self._cond.wait_for(lambda: not self._busy)  # a worker thread may be committing
                if not self._pending:
                    continue
                batch = self._take()
            self._commit(batch)

    def _batch_ready(self) -> bool:
        return self._closed or self._urgent > 0 or len(self._pending) >= LINGER_BATCH

    def _take(self) -> list[tuple[Execution, Completion]]:
        """(Under the condition's lock.) The next batch; the caller then owns the commit."""
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        self._busy = True
        return batch

    def _commit(self, batch: list[tuple[Execution, Completion]]) -> None:
        try:
            self._record(batch)
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _record(self, batch: list[tuple[Execution, Completion]]) -> None:
        try:
            lost = self.store.complete_many([item for _, item in batch])
        except Exception:
            # Not committed: the jobs stay running under their leases and are taken back
            # when those expire, as after a crash. Say so once per job.
            log.exception("could not record %d successful job(s); they will run again", len(batch))
            self.committed(batch, {item.id for _, item in batch})
            return
        self.committed(batch, lost)
