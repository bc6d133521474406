"""SQLite: the state of a job with a batch or a limit key changes only through statements that
fire the trigger keeping batch counters and limit slots (``sql.TRACKED``); other jobs' through
statements that refuse such a job. Whichever statement a store tries first, a batch's counters
and a key's slots stay exact, even when the store that finishes a job is not the one that
claimed it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

import onward
from jobs_batches import Callback, Member
from jobs_limits import OnePerAccount
from onward import stores
from onward.stores.base import Checkpoint, Claimed, Completion, Store
from onward.stores.sqlite import limit_sql, sql

DONE = Checkpoint(None, None, False)

# Claims take enqueued jobs to running: no batch counter moves, no slot is freed.
_CLAIMS = {"_TAKE", "CLAIM", "claim_seqs_sql"}


def _statements() -> dict[str, str]:
    found = {
        name: value
        for module in (sql, limit_sql)
        for name, value in vars(module).items()
        if isinstance(value, str) and "UPDATE onward_jobs" in value
    }
    for rows in (1, 3):
        found[f"complete_many_sql({rows})"] = sql.complete_many_sql(rows)
        found[f"complete_many_sql({rows}, tracked)"] = sql.complete_many_sql(rows, True)
        found["claim_seqs_sql"] = sql.claim_seqs_sql(rows)
    return found


def test_every_statement_that_changes_a_state_is_tracked_or_refuses_tracked_jobs() -> None:
    statements = _statements()
    assert {"COMPLETE", "COMPLETE_TRACKED", "FAIL", "REQUEUE", "DISCARD", "REAP_FAIL"} <= set(statements)
    for name, statement in statements.items():
        set_clause = re.split(r" (?:WHERE|FROM) ", statement.split(" SET ", 1)[1])[0]
        if not re.search(r"(?:^|[ ,])state = ", set_clause) or name in _CLAIMS:
            continue
        tracked = sql.TRACKED.strip(" ,") in set_clause
        untracked = statement.split(" RETURNING ")[0].endswith(sql.UNTRACKED)
        assert tracked != untracked, name


def _complete(store: Store, job: Claimed) -> None:
    store.complete(job.id, job.lease_token, "null", DONE, (), None)


def _complete_many(store: Store, job: Claimed) -> None:
    assert store.complete_many([Completion(job.id, job.lease_token, "null", DONE)]) == set()


def _fail(store: Store, job: Claimed) -> None:
    store.fail(job.id, job.lease_token, DONE, "ValueError: no")


def _retry(store: Store, job: Claimed) -> None:
    store.retry(job.id, job.lease_token, DONE, "ValueError: again", 3600.0, False)


ENDINGS: dict[str, Callable[[Store, Claimed], None]] = {
    "complete": _complete,
    "complete_many": _complete_many,
    "fail": _fail,
    "retry": _retry,
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
@pytest.mark.parametrize("same_store", [True, False], ids=["same store", "another store"])
def test_a_slot_freed_by_any_store_makes_the_held_job_ready(
    sqlite_store: Store, tmp_path: Path, ending: str, same_store: bool
) -> None:
    first, second = OnePerAccount.perform_all_later([(7,), (7,)])
    [claimed] = sqlite_store.claim("w", None, 30.0, 2)  # the second is held: one at a time
    assert claimed.id == first.id
    assert sqlite_store.claim("w", None, 30.0, 2) == []
    with stores.connected(f"sqlite:///{tmp_path / 'onward.sqlite3'}") as other:
        ENDINGS[ending](sqlite_store if same_store else other, claimed)
    assert [c.id for c in sqlite_store.claim("w", None, 30.0, 2)] == [second.id]


@pytest.mark.parametrize("ending", ["complete", "complete_many", "fail"])
def test_a_member_finished_without_saying_so_still_moves_its_batch(sqlite_store: Store, ending: str) -> None:
    batch = onward.batch()
    with batch:
        Member.perform_all_later([(1,), (2,)])
        batch.on_finish(Callback, "done")
    for expected_pending in (1, 0):
        [claimed] = sqlite_store.claim("w", None, 30.0, 1)
        ENDINGS[ending](sqlite_store, claimed)  # member=False: the store finds out itself
        record = onward.get_batch(batch.id)
        assert record.pending == expected_pending
        assert record.succeeded + record.failed == 2 - expected_pending
    assert len(onward.get_batch(batch.id).callback_ids) == 1
