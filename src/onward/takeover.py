"""Taking over the jobs of a worker process that died, as soon as its supervisor sees it die.

Without this, the jobs of a dead worker wait for their leases to expire (``lease_timeout``,
30 s by default) and each of them then counts a try, whether it ran or not. A supervisor
knows better: it saw its child die, and the child's journal (:mod:`onward.journal`) names
the worker and the jobs it really started. :class:`TakeOver` reads that journal and asks the
store to take the jobs back in one transaction (``Store.take_over``), guarded by the dead
worker's id and each job's lease token, so a job that another worker holds is never touched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from onward.journal import read_journal
from onward.stores.base import Store

__all__ = ["TakeOver"]

log = logging.getLogger("onward.supervisor")


class TakeOver:
    """Called with the journal path of a child that died; connects with ``connect`` on
    first use and keeps that store until :meth:`close`."""

    def __init__(self, connect: Callable[[], Store]) -> None:
        self.connect = connect
        self.store: Store | None = None

    def __call__(self, path: str) -> int:
        """Take over the jobs the journal at ``path`` names; returns how many changed."""
        contents = read_journal(path)
        if contents is None:
            return 0
        try:
            if self.store is None:
                self.store = self.connect()
            changed = self.store.take_over(contents.worker_id, contents.ran, contents.succeeded)
        except Exception as exc:
            log.error(
                "could not take over the jobs of worker %s (%s); their leases will expire",
                contents.worker_id,
                exc,
                extra={"event": "takeover_failed", "worker_id": contents.worker_id},
            )
            return 0
        os.remove(path)
        if changed:
            log.info(
                "took over %d job(s) of worker %s after its process died (%d had started)",
                changed,
                contents.worker_id,
                len(contents.ran),
                extra={"event": "takeover", "worker_id": contents.worker_id},
            )
        return changed

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
