"""``Job.perform_now``: running a job in the calling thread, recorded in the store.

The caller holds the job's lease and renews it like a worker (one lease keeper per store),
so if the caller dies a worker takes the job over. It never retries or resumes by itself:
an interruption resumes in place, and any other outcome returns or raises here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import threading
from typing import Any

from onward import collecting, connecting
from onward.errors import JobCancelled, LeaseLost
from onward.execution import Execution, Outcome
from onward.leases import LeaseKeeper
from onward.steps import StopSignal
from onward.stores.base import Claimed, NewJob, Store

__all__ = ["PERFORM_NOW_LEASE", "caller_id", "perform_now"]

#: Seconds of lease a ``perform_now`` caller takes and renews.
PERFORM_NOW_LEASE = 30.0

_keepers: dict[int, LeaseKeeper] = {}
_keepers_lock = threading.Lock()


def _keeper(store: Store) -> LeaseKeeper:
    with _keepers_lock:
        keeper = _keepers.get(id(store))
        if keeper is None or keeper.store is not store:
            keeper = _keepers[id(store)] = LeaseKeeper(store, PERFORM_NOW_LEASE)
        return keeper


def caller_id() -> str:
    """The worker id recorded for jobs run by ``perform_now`` in this process."""
    return f"{socket.gethostname()}:{os.getpid()}:caller"


def perform_now(job: NewJob) -> Any:
    """Run ``job`` in the calling thread, recorded in the default store (see ``Job.perform_now``)."""
    store = connecting.default()
    worker_id = caller_id()
    claimed = store.start_now(job, worker_id, PERFORM_NOW_LEASE)
    signal = StopSignal()
    keeper = _keeper(store)
    keeper.add(claimed.id, claimed.lease_token, signal)
    try:
        with collecting.set_aside():  # a perform_now inside continuations is not part of that block
            while True:
                execution = Execution(store, claimed, signal, caller=True, worker_id=worker_id)
                outcome = _run_here(execution)
                if outcome == Outcome.INTERRUPTED:
                    claimed = _resumed(claimed, execution)
                    continue
                if outcome == Outcome.SUCCEEDED:
                    return execution.result
                if outcome == Outcome.CANCELLED:
                    raise JobCancelled(f"job {claimed.id} was cancelled while running in perform_now")
                if outcome == Outcome.LOST:
                    raise LeaseLost(f"job {claimed.id} lost its lease while running in perform_now")
                assert execution.exception is not None
                raise execution.exception
    finally:
        keeper.remove(claimed.id)


def _run_here(execution: Execution) -> Outcome:
    if execution.job_class is None and not execution.prepare():
        assert execution.outcome is not None
        return execution.outcome
    if not execution.is_async:
        return execution.run()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(execution.run_async())
    # Called from inside an event loop: run the job on a loop of its own, in a thread.
    box: list[Outcome] = []
    thread = threading.Thread(target=lambda: box.append(asyncio.run(execution.run_async())))
    thread.start()
    thread.join()
    return box[0]


def _resumed(claimed: Claimed, execution: Execution) -> Claimed:
    """The same claim, continuing in place from the checkpoint just saved."""
    checkpoint = execution.final_checkpoint()
    return dataclasses.replace(
        claimed,
        resumptions=claimed.resumptions + 1,
        steps=checkpoint.steps,
        job_state=checkpoint.job_state,
        resumed=True,
    )
