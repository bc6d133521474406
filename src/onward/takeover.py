"""Taking over the jobs of a worker process that died, as soon as its death is seen.

Without this, the jobs of a dead worker wait for their leases to expire (``lease_timeout``,
30 s by default) and each of them then counts a try, whether it ran or not. A dead worker's
journal (:mod:`onward.journal`) names the worker and the jobs it really started:
:func:`take_over_journal` reads it and asks the store to take the jobs back in one
transaction (``Store.take_over``), guarded by the dead worker's id and each job's lease
token, so a job that another worker holds is never touched. A supervisor does it the moment
its child dies (:class:`TakeOver`); every worker's reaper does it for the journals of dead
processes of its machine (:mod:`onward.duties.reaper`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable

from onward.journal import read_journal
from onward.stores.base import Store

__all__ = ["TakeOver", "take_over_journal"]

log = logging.getLogger("onward.worker")


def take_over_journal(store: Store, path: str) -> int:
    """Take over the jobs the dead worker's journal at ``path`` names, then remove it;
    returns how many jobs changed. Store errors propagate (the journal stays)."""
    contents = read_journal(path)
    if contents is None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        return 0
    changed = store.take_over(contents.worker_id, contents.ran, contents.succeeded)
    with contextlib.suppress(FileNotFoundError):  # another reaper may have been as quick
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


class TakeOver:
    """For a supervisor: called with the journal path of a child that died; connects with
    ``connect`` on first use and keeps that store until :meth:`close`."""

    def __init__(self, connect: Callable[[], Store]) -> None:
        self.connect = connect
        self.store: Store | None = None

    def __call__(self, path: str) -> int:
        try:
            if self.store is None:
                self.store = self.connect()
            return take_over_journal(self.store, path)
        except Exception as exc:
            log.error(
                "could not take over the jobs of a dead worker (%s); their leases will expire",
                exc,
                extra={"event": "takeover_failed"},
            )
            return 0

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
