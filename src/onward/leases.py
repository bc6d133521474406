"""Keeping leases alive: one thread renews the leases of every execution it watches.

Heartbeats run at a third of the lease (or faster) from a plain thread, so a busy event loop
cannot starve them. When a renewal finds a lease gone (taken back after it expired), the
execution's :class:`~onward.steps.StopSignal` is set with ``lost=True``: it stops at its next
interruption point and writes nothing more. When the renewal reports a cancellation request
(or the store hears of one sooner, see ``Store.add_cancel_watcher``), the signal is
cancelled: the execution ends as cancelled at its next interruption point.
"""

from __future__ import annotations

import logging
import threading

from onward.errors import StoreClosed
from onward.steps import StopSignal
from onward.stores.base import Store

log = logging.getLogger("onward.worker")


class LeaseKeeper:
    """Renews ``(job id, lease token)`` leases every ``lease_timeout / 3`` seconds."""

    def __init__(self, store: Store, lease_timeout: float) -> None:
        self.store = store
        self.lease_timeout = lease_timeout
        self.interval = lease_timeout / 3.0
        self._leases: dict[str, tuple[str, StopSignal]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, job_id: str, token: str, signal: StopSignal) -> None:
        with self._lock:
            self._leases[job_id] = (token, signal)
            if self._thread is None:
                self.store.add_cancel_watcher(self.cancel_requested)
                self._thread = threading.Thread(target=self._run, name="onward-heartbeat", daemon=True)
                self._thread.start()

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._leases.pop(job_id, None)

    def cancel_requested(self, job_id: str) -> None:
        """Job ``job_id`` was cancelled: if it runs under this keeper, its execution stops."""
        with self._lock:
            entry = self._leases.get(job_id)
        if entry is not None and not entry[1].cancelled:
            log.info(
                "job %s was cancelled; it stops at its next checkpoint",
                job_id,
                extra={"job_id": job_id, "event": "cancel_requested"},
            )
            entry[1].cancel()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self.store.remove_cancel_watcher(self.cancel_requested)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def renew(self) -> None:
        with self._lock:
            leases = {job_id: token for job_id, (token, _) in self._leases.items()}
        if not leases:
            return
        lost, cancel = self.store.renew(list(leases.items()), self.lease_timeout)
        for job_id in cancel:
            self.cancel_requested(job_id)
        for job_id in lost:
            with self._lock:
                entry = self._leases.pop(job_id, None)
            if entry is not None and entry[0] == leases[job_id]:
                log.warning(
                    "job %s lost its lease; it stops without writing",
                    job_id,
                    extra={"job_id": job_id, "event": "lease_lost"},
                )
                entry[1].stop("lease lost", lost=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renew()
            except StoreClosed:
                return
            except Exception:
                log.exception("heartbeat failed; retrying")
