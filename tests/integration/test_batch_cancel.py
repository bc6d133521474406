"""Cancelling a batch (API §12): ``Batch.cancel()`` and ``onward cancel BATCH_ID`` cancel every
unfinished member; the batch then finishes, so ``on_finish`` runs once and ``on_success``
never."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

import onward
from jobs_batches import Callback, Member
from jobs_core import StepWaitsForEvent, event, unique_names
from onward import Store
from onward.cli import main
from onward.testing import drain


def tags(store: Store, batch_id: str) -> list[str]:
    return [store.get(i).args[0] for i in onward.get_batch(batch_id).callback_ids]


def test_cancel_stops_every_unfinished_member_and_the_batch_finishes(store: Store) -> None:
    started, go = unique_names("started", "go")
    batch = onward.batch("to stop")
    with batch:
        running = StepWaitsForEvent.perform_later(started, go)
        Member.perform_later(1)
        Member.perform_later(2)
        batch.on_success(Callback, "success")
        batch.on_finish(Callback, "finish")
    worker = onward.Worker(store=store, concurrency=1)
    thread = threading.Thread(target=worker.run, kwargs={"burst": True})
    thread.start()
    try:
        assert event(started).wait(20), "the stepped member did not start"
        record = batch.cancel()
    finally:
        event(go).set()
        thread.join(30)
    assert (record.cancelled, record.pending) == (2, 1)  # the running member was asked to stop
    assert running.refresh().cancel_requested_at is not None
    drain()
    assert running.refresh().state == "cancelled"
    final = onward.get_batch(batch.id)
    assert (final.state, final.pending, final.cancelled, final.succeeded) == ("finished", 0, 3, 0)
    assert tags(store, batch.id) == ["finish"]


def test_cancelling_a_finished_batch_changes_nothing(store: Store) -> None:
    batch = onward.batch()
    with batch:
        Member.perform_later(1)
    drain()
    record = batch.cancel()
    assert (record.state, record.succeeded, record.cancelled) == ("succeeded", 1, 0)


def test_onward_cancel_with_a_batch_id_cancels_its_members(store: Store) -> None:
    batch = onward.batch()
    with batch:
        Member.perform_all_later([(i,) for i in range(5)])
    result = CliRunner().invoke(main, ["cancel", batch.id, "--database-url", store.url])
    assert result.exit_code == 0, result.output
    assert f"batch {batch.id}: 5 member(s) cancelled, 0 running asked to stop, 0 already finished." in result.output
    assert onward.get_batch(batch.id).cancelled == 5
    assert drain() == 0


def test_onward_cancel_of_an_unknown_id_is_a_one_line_error(store: Store) -> None:
    result = CliRunner().invoke(main, ["cancel", "no-such-id", "--database-url", store.url])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "no-such-id" in result.output


def test_cancel_before_the_block_committed_is_a_key_error(store: Store) -> None:
    batch = onward.batch()
    with pytest.raises(KeyError):
        batch.cancel()
