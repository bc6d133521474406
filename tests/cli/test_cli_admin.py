"""onward.admin: the queries and actions the CLI and the dashboard share, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cli_jobs import Boom, Chain, Flaky, Greet, Mailing, flaky_fail

from onward import JobClassNotFound, Store
from onward.admin import (
    ActionRefused,
    Admin,
    JobNotFound,
    decode_arguments,
    format_duration,
    parse_duration,
    step_progress,
)
from onward.testing import drain


@pytest.fixture
def admin(store: Store) -> Admin:
    return Admin(store)


def test_keyset_pages_cover_every_job_once_newest_first(admin: Admin) -> None:
    ids = [h.id for h in Greet.perform_all_later([(f"n{i}",) for i in range(25)])]
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        page = admin.jobs(limit=10, before=before)
        seen += [j.id for j in page.jobs]
        pages += 1
        if page.next is None:
            break
        before = page.next
    assert pages == 3
    assert seen == list(reversed(ids))


def test_filters_by_state_queue_class_and_id_prefix(admin: Admin) -> None:
    greet = Greet.perform_later("a")
    boom = Boom.perform_later("no")
    mail = Mailing.perform_later()
    drain()
    assert [j.id for j in admin.jobs(state="failed").jobs] == [boom.id]
    assert [j.id for j in admin.jobs(queue="mailers").jobs] == [mail.id]
    assert [j.id for j in admin.jobs(job_class="cli_jobs:Greet").jobs] == [greet.id]
    assert [j.id for j in admin.jobs(search=greet.id.upper()).jobs] == [greet.id]
    assert admin.jobs(state="succeeded", queue="mailers", job_class="cli_jobs:Greet").jobs == []
    with pytest.raises(ValueError, match="unknown state"):
        admin.jobs(state="done")


def test_resolve_accepts_a_unique_prefix_and_rejects_unknown_ids(admin: Admin) -> None:
    handle = Greet.perform_later("a")
    assert admin.resolve(handle.id[:-4]) == handle.id
    with pytest.raises(JobNotFound, match="no job with id 'nope'"):
        admin.get("nope")
    with pytest.raises(KeyError):  # JobNotFound is a KeyError too, like onward.get_job
        admin.job("0" * 36)


def test_detail_has_step_progress_and_the_whole_chain(admin: Admin) -> None:
    parent = Chain.perform_later("x")
    Flaky.perform_later()
    drain()
    child_id = parent.refresh().children[1]
    detail = admin.job(child_id)
    assert detail.tree.id == parent.id
    assert [c.id for c in detail.tree.children] == list(parent.refresh().children)
    assert all(c.state == "succeeded" for c in detail.tree.children)
    flaky = admin.jobs(job_class="cli_jobs:Flaky").jobs[0]
    steps = admin.job(flaky.id).steps
    assert [(s.name, s.status, s.advanced, s.total, s.fraction) for s in steps] == [
        ("prepare", "completed", 0, None, 1.0),
        ("process", "completed", 10, 10, 1.0),
    ]
    assert steps[1].rate is not None
    assert steps[1].rate > 0
    assert steps[1].eta is None  # completed


def test_step_progress_estimates_the_time_left() -> None:
    from datetime import UTC, datetime

    from onward import StepRecord

    started = datetime(2026, 1, 1, tzinfo=UTC)
    step = StepRecord("s", "running", 40, 40, 100, started, None)
    progress = step_progress(step, now=started.timestamp() + 20)
    assert progress.rate == 2.0
    assert progress.eta == 30.0
    assert progress.fraction == 0.4


def test_counts_and_throughput(admin: Admin) -> None:
    Greet.perform_later("a")
    Greet.perform_later("b")
    Boom.perform_later("c")
    Mailing.set(wait=3600).perform_later()
    drain()
    counts = {q.queue: q.counts for q in admin.counts()}
    assert counts["default"]["succeeded"] == 2
    assert counts["default"]["failed"] == 1
    assert counts["mailers"]["enqueued"] == 1
    stats = admin.stats(minutes=5)
    assert stats.totals == {"enqueued": 1, "running": 0, "succeeded": 2, "failed": 1, "discarded": 0, "cancelled": 0}
    assert stats.finished_last_minute == 3
    assert len(stats.per_minute) == 5
    assert [m.total for m in stats.per_minute[:-1]] == [0, 0, 0, 0]
    assert (stats.per_minute[-1].succeeded, stats.per_minute[-1].failed) == (2, 1)


def test_retry_keeps_progress_and_restarts_attempts(admin: Admin) -> None:
    flaky_fail.set()
    try:
        handle = Flaky.perform_later()
        drain()
    finally:
        flaky_fail.clear()
    failed = handle.refresh()
    assert failed.state == "failed"
    assert failed.attempts == 1
    record = admin.retry(handle.id)
    assert (record.state, record.attempts) == ("enqueued", 0)
    drain()
    done = handle.refresh()
    assert done.state == "succeeded"
    assert done.attempts == 1
    assert done.result["prepare_runs"] == 1  # the completed step was skipped
    assert done.result["processed"] == list(range(10))  # items 0-4 were not processed again
    assert done.error is not None
    assert "failed at item 5" in done.error
    with pytest.raises(ActionRefused, match="only failed, discarded or cancelled jobs can be retried"):
        admin.retry(handle.id)


def test_retry_of_a_discarded_job_resumes_its_progress(admin: Admin) -> None:
    flaky_fail.set()
    try:
        handle = Flaky.perform_later()
        drain()
    finally:
        flaky_fail.clear()
    assert admin.discard(handle.id).state == "discarded"
    record = admin.retry(handle.id)
    assert (record.state, record.attempts) == ("enqueued", 0)
    drain()
    done = handle.refresh()
    assert done.state == "succeeded"
    assert done.result["prepare_runs"] == 1  # the completed step was skipped
    assert done.result["processed"] == list(range(10))  # items 0-4 were not processed again


def test_discard_enqueued_or_failed_only(admin: Admin) -> None:
    waiting = Greet.perform_later("a")
    failed = Boom.perform_later("b")
    drain(queues=["nothing"])
    assert admin.discard(waiting.id).state == "discarded"
    assert drain() == 1  # only Boom ran
    assert admin.discard(failed.id).state == "discarded"
    done = Greet.perform_later("c")
    drain()
    with pytest.raises(ActionRefused, match="only enqueued or failed jobs can be discarded"):
        admin.discard(done.id)


def test_enqueue_by_class_path(admin: Admin) -> None:
    handle = admin.enqueue("cli_jobs:Greet", ["Ada"], {"punctuation": "?"}, queue="other", priority=5)
    record = handle.refresh()
    assert (record.job_class, record.queue, record.priority) == ("cli_jobs:Greet", "other", 5)
    assert (record.args, record.kwargs) == (["Ada"], {"punctuation": "?"})
    drain()
    assert handle.refresh().result == "hello Ada?"
    with pytest.raises(ValueError, match="module:ClassName"):
        admin.enqueue("Greet")
    with pytest.raises(JobClassNotFound):
        admin.enqueue("cli_jobs:Nope")


def test_purge_deletes_old_finished_jobs_in_batches(admin: Admin, store: Store) -> None:
    Greet.perform_all_later([(f"n{i}",) for i in range(7)])
    failed = Boom.perform_later("kept")
    drain()
    assert admin.purge(timedelta(days=7)) == 0  # all too recent
    assert admin.purge(0, batch_size=3) == 7
    assert [j.id for j in admin.jobs().jobs] == [failed.id]
    assert admin.purge(0, states=["failed"]) == 1
    with pytest.raises(ValueError, match="only cancelled, discarded, failed, succeeded"):
        admin.purge(0, states=["running"])


def test_text_helpers() -> None:
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("45") == timedelta(seconds=45)
    for bad in ("", "7x", "d7", "1h junk"):
        with pytest.raises(ValueError, match="bad duration"):
            parse_duration(bad)
    assert format_duration(185) == "3m05s"
    assert decode_arguments('[1, "a"]', '{"k": true}') == ([1, "a"], {"k": True})
    with pytest.raises(ValueError, match="--args is not valid JSON"):
        decode_arguments("[1,", None)
    with pytest.raises(ValueError, match="--kwargs must be a JSON object"):
        decode_arguments(None, "[1]")


def test_chain_of_a_job_whose_parent_was_purged_starts_at_the_job(admin: Admin, store: Store) -> None:
    parent = Chain.perform_later("x")
    drain()
    first, second = parent.refresh().children
    store.purge_finished(["succeeded"], store.now() + 1, 1)  # the oldest finished job: the parent
    with pytest.raises(JobNotFound):
        admin.get(parent.id)
    tree = admin.job(first).tree
    assert (tree.id, tree.children) == (first, [])
    assert admin.get(first).parent_id == parent.id
    assert admin.job(second).tree.id == second


def test_a_long_chain_is_cut_to_a_bounded_tree(admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli_jobs import Countdown

    from onward import admin as admin_module

    monkeypatch.setattr(admin_module, "MAX_TREE", 20)
    first = Countdown.perform_later(50)
    drain()
    newest = admin.jobs(limit=1).jobs[0]
    assert newest.args == [0]
    tree = admin.job(newest.id).tree
    chain = [tree]
    while chain[-1].children:
        chain.append(chain[-1].children[0])
    assert chain[-1].id == newest.id  # the tree always reaches the job asked about
    assert len(chain) == 11  # 10 ancestors up
    assert tree.id != first.id
    below = admin.job(tree.id).tree  # asked from higher up, the tree is cut further down
    chain = [below]
    while chain[-1].children:
        chain.append(chain[-1].children[0])
    assert len(chain) == 20
    assert chain[-1].truncated
