"""Paused queues (API §12) on both stores: no worker claims from them, whichever queues it
serves; enqueueing goes on; resuming lets workers claim again."""

from __future__ import annotations

import pytest

from jobs_cancel import Keyed
from onward import Store, Worker
from onward.admin import Admin


@pytest.mark.parametrize("served", [None, ["mailers"], ["mailers", "default"]])
def test_no_worker_claims_from_a_paused_queue(store: Store, served: list[str] | None) -> None:
    admin = Admin(store)
    assert admin.pause_queue("mailers").paused
    held = Keyed.set(queue="mailers").perform_later("held")
    free = Keyed.perform_later("free")
    Worker(store=store, queues=served).run(burst=True)  # returns: it does not wait for paused jobs
    assert held.refresh().state == "enqueued"
    assert free.refresh().state == ("succeeded" if served != ["mailers"] else "enqueued")
    view = admin.resume_queue("mailers")
    assert (view.paused, view.counts["enqueued"]) == (False, 1)
    Worker(store=store, queues=served).run(burst=True)
    assert held.refresh().state == "succeeded"


def test_queues_lists_paused_queues_without_jobs_and_pausing_twice_changes_nothing(store: Store) -> None:
    admin = Admin(store)
    first = admin.pause_queue("empty")
    again = admin.pause_queue("empty")
    assert first.paused_at == again.paused_at
    assert [(q.name, q.paused) for q in admin.queues()] == [("empty", True)]
    admin.resume_queue("empty")
    assert admin.queues() == []
    with pytest.raises(ValueError, match="control characters"):
        admin.pause_queue("bad\nname")


@pytest.mark.parametrize("served", [None, ["mailers"]])
def test_jobs_with_limits_in_a_paused_queue_are_not_claimed_either(store: Store, served: list[str] | None) -> None:
    from jobs_limits import Capped

    admin = Admin(store)
    admin.pause_queue("mailers")
    held = [Capped.set(queue="mailers").perform_later(n, "a") for n in range(3)]
    Worker(store=store, queues=served).run(burst=True)
    assert {h.refresh().state for h in held} == {"enqueued"}
    admin.resume_queue("mailers")
    Worker(store=store, queues=served, concurrency=2).run(burst=True)
    assert {h.refresh().state for h in held} == {"succeeded"}
