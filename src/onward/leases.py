"""Keeping leases alive: one thread renews the leases of every execution it watches.

Heartbeats run at a third of the lease (or faster) from a plain thread, so a busy event loop
cannot starve them. When a renewal finds a lease gone (taken back after it expired), the
execution's :class:`~onward.steps.StopSignal` is set with ``lost=True``: it stops at its next
interruption point and writes nothing more.
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
                self._thread = threading.Thread(target=self._run, name="onward-heartbeat", daemon=True)
                self._thread.start()

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._leases.pop(job_id, None)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def renew(self) -> None:
        with self._lock:
            leases = {job_id: token for job_id, (token, _) in self._leases.items()}
        if not leases:
            return
        lost = self.store.heartbeat(list(leases.items()), self.lease_timeout)
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
