"""A continuations block that raised is visible to operators and can be run again, its jobs
committed in one transaction with the parent's error cleared, exactly once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs_core import FlakyContinuations, continuations_broken
from onward import Store
from onward.admin import ActionRefused, Admin
from onward.testing import drain


@pytest.fixture
def broken() -> Iterator[None]:
    continuations_broken.set()
    try:
        yield
    finally:
        continuations_broken.clear()


def _fail_continuations(store: Store, n: int) -> str:
    continuations_broken.set()
    try:
        handle = FlakyContinuations.perform_later(n)
        drain()
    finally:
        continuations_broken.clear()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert record.continuation_error is not None
    assert record.children == ()
    return handle.id


def test_failed_continuations_are_found_and_counted(store: Store) -> None:
    admin = Admin(store)
    failed = _fail_continuations(store, 1)
    ok = FlakyContinuations.perform_later(2)
    drain()
    assert ok.refresh().continuation_error is None
    assert [j.id for j in admin.jobs(continuation_failed=True).jobs] == [failed]
    assert admin.stats().continuation_failed == 1


def test_running_them_again_commits_the_children_once_and_clears_the_error(store: Store) -> None:
    admin = Admin(store)
    job_id = _fail_continuations(store, 3)
    rerun = admin.retry_continuations(job_id)
    again = admin.retry_continuations(job_id)  # asked twice before a worker ran: one re-run
    assert again.id == rerun.id
    drain()
    record = store.get(job_id)
    assert record.continuation_error is None
    children = [store.get(c) for c in record.children]
    assert sorted(c.args[0] for c in children) == ["later-3", "now-3"]
    assert {c.parent_id for c in children} == {job_id}
    later = next(c for c in children if c.args[0] == "later-3")
    assert later.state == "enqueued"  # its wait counts from the re-run's commit
    assert later.scheduled_at.timestamp() - store.now() > 3000
    assert admin.jobs(continuation_failed=True).jobs == []
    assert rerun.refresh().state == "succeeded"
    with pytest.raises(ActionRefused, match="no failed continuations"):
        admin.retry_continuations(job_id)


def test_a_block_that_raises_again_records_the_new_error_and_enqueues_nothing(store: Store, broken: None) -> None:
    admin = Admin(store)
    handle = FlakyContinuations.perform_later(4)
    drain()
    rerun = admin.retry_continuations(handle.id)
    drain()
    record = handle.refresh()
    assert record.children == ()
    assert record.continuation_error is not None
    assert record.continuation_error.endswith("RuntimeError: the mail service is down")
    failed = rerun.refresh()
    assert failed.state == "failed"
    assert failed.error is not None
    assert "raised again" in failed.error


def test_only_a_succeeded_job_with_failed_continuations_can_have_them_run_again(store: Store) -> None:
    handle = FlakyContinuations.perform_later(5)
    with pytest.raises(ActionRefused, match="no failed continuations"):
        Admin(store).retry_continuations(handle.id)
