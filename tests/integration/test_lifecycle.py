"""One table of cases for each decision of :mod:`onward.lifecycle`, run against the pure
function and against both stores, which apply it (PostgreSQL restates it in SQL)."""

from __future__ import annotations

import pytest

import rawsql
from onward import lifecycle
from onward.lifecycle import Action, KeyUse, Verdict
from onward.records import TRANSITIONS, State
from onward.stores.base import Checkpoint, NewJob, Store

STEPS = '[{"name":"s","status":"running","cursor":1,"advanced":1,"total":null,"started_at":0,"completed_at":null}]'

# (progressed, attempts, max_attempts, resumptions, max_resumptions) -> verdict, resume_limit
LOST_LEASE_CASES = [
    ((True, 1, 3, 0, None), Verdict.RESUME, False),
    ((True, 3, 3, 0, None), Verdict.RESUME, False),  # progress wins over spent attempts
    ((True, 1, 3, 1, 2), Verdict.RESUME, False),
    ((True, 1, 3, 2, 2), Verdict.FAIL, True),
    ((False, 1, 3, 0, None), Verdict.RETRY, False),
    ((False, 2, 3, 5, 1), Verdict.RETRY, False),  # resumptions matter only after progress
    ((False, 3, 3, 0, None), Verdict.FAIL, False),
    ((False, 1, 1, 0, None), Verdict.FAIL, False),
]


@pytest.mark.parametrize(("case", "verdict", "limit"), LOST_LEASE_CASES)
def test_the_lost_lease_decision(case: tuple[bool, int, int, int, int | None], verdict: Verdict, limit: bool) -> None:
    progressed, attempts, max_attempts, resumptions, max_resumptions = case
    decision = lifecycle.after_lost_lease(
        progressed=progressed,
        attempts=attempts,
        max_attempts=max_attempts,
        resumptions=resumptions,
        max_resumptions=max_resumptions,
    )
    assert (decision.verdict, decision.resume_limit) == (verdict, limit)


@pytest.mark.parametrize(("case", "verdict", "limit"), LOST_LEASE_CASES)
def test_each_store_applies_the_lost_lease_decision(
    store: Store, case: tuple[bool, int, int, int, int | None], verdict: Verdict, limit: bool
) -> None:
    progressed, attempts, max_attempts, resumptions, max_resumptions = case
    job = NewJob("job-1", "jobs_core:Echo", "default", 0, "[]", "{}", max_attempts, max_resumptions)
    store.enqueue([job])
    [claimed] = store.claim("w", None, 30.0, 1)
    store.save_checkpoint(claimed.id, claimed.lease_token, Checkpoint(STEPS, "{}", progressed))
    rawsql.execute(
        store, "UPDATE onward_jobs SET attempts = ?, resumptions = ? WHERE id = ?", (attempts, resumptions, job.id)
    )
    rawsql.expire_lease(store, job.id)
    assert store.reap_expired() == 1
    record = store.get(job.id)
    if verdict == Verdict.FAIL:
        assert record.state == "failed"
        expected = lifecycle.resume_limit_error(max_resumptions or 0) if limit else lifecycle.LEASE_EXPIRED_ERROR
        assert record.error == expected
        return
    assert record.state == "enqueued"
    assert record.resumptions == resumptions + (verdict == Verdict.RESUME)
    [again] = store.claim("w", None, 30.0, 1)
    # A resumption uses no attempt; a retry is the next attempt.
    assert again.attempts == attempts + (verdict == Verdict.RETRY)
    assert again.resumed == (verdict == Verdict.RESUME)


@pytest.mark.parametrize("how", ["release", "take_over"])
@pytest.mark.parametrize(("case", "verdict", "limit"), LOST_LEASE_CASES)
def test_a_graceful_release_and_a_takeover_decide_as_a_lost_lease(
    store: Store, how: str, case: tuple[bool, int, int, int, int | None], verdict: Verdict, limit: bool
) -> None:
    progressed, attempts, max_attempts, resumptions, max_resumptions = case
    job = NewJob("job-1", "jobs_core:Echo", "default", 0, "[]", "{}", max_attempts, max_resumptions)
    store.enqueue([job])
    [claimed] = store.claim("w", None, 30.0, 1)
    store.save_checkpoint(claimed.id, claimed.lease_token, Checkpoint(STEPS, "{}", progressed))
    rawsql.execute(
        store, "UPDATE onward_jobs SET attempts = ?, resumptions = ? WHERE id = ?", (attempts, resumptions, job.id)
    )
    if how == "release":
        store.release(claimed.id, claimed.lease_token)
        error = lifecycle.STOPPED_ERROR
    else:
        assert store.take_over("w", [(claimed.id, claimed.lease_token)], []) == 1
        error = lifecycle.PROCESS_DIED_ERROR
    record = store.get(job.id)
    if verdict == Verdict.FAIL:
        assert record.state == "failed"
        assert record.error == (lifecycle.resume_limit_error(max_resumptions or 0) if limit else error)
        return
    assert record.state == "enqueued"
    assert record.resumptions == resumptions + (verdict == Verdict.RESUME)
    [again] = store.claim("w", None, 30.0, 1)
    assert again.attempts == attempts + (verdict == Verdict.RETRY)
    assert again.resumed == (verdict == Verdict.RESUME)


# (fatal, discard, retryable, progressed, resume_after_progress, attempts, max_attempts, resumptions, max_resumptions)
ERROR_CASES = [
    ((True, True, True, True, True, 1, 3, 0, None), Verdict.FAIL, False),
    ((False, True, True, True, True, 1, 3, 0, None), Verdict.DISCARD, False),
    ((False, False, False, True, True, 1, 3, 0, None), Verdict.FAIL, False),
    ((False, False, True, True, True, 3, 3, 0, None), Verdict.RESUME, False),
    ((False, False, True, True, True, 1, 3, 4, 4), Verdict.FAIL, True),
    ((False, False, True, True, False, 1, 3, 0, None), Verdict.RETRY, False),
    ((False, False, True, False, True, 2, 3, 0, None), Verdict.RETRY, False),
    ((False, False, True, False, True, 3, 3, 0, None), Verdict.FAIL, False),
]


@pytest.mark.parametrize(("case", "verdict", "limit"), ERROR_CASES)
def test_the_decision_after_an_error(case: tuple[object, ...], verdict: Verdict, limit: bool) -> None:
    names = (
        "fatal",
        "discard",
        "retryable",
        "progressed",
        "resume_after_progress",
        "attempts",
        "max_attempts",
        "resumptions",
        "max_resumptions",
    )
    decision = lifecycle.after_error(**dict(zip(names, case, strict=True)))  # type: ignore[arg-type]
    assert (decision.verdict, decision.resume_limit) == (verdict, limit)


# latest state of the key, fresh, perform_now -> use
KEY_CASES = [
    (None, False, False, KeyUse.NEW),
    ("enqueued", False, False, KeyUse.EXISTING),
    ("running", False, False, KeyUse.EXISTING),
    ("failed", False, False, KeyUse.RERUN),
    ("failed", True, False, KeyUse.NEW),
    ("succeeded", False, False, KeyUse.NEW),
    ("discarded", False, False, KeyUse.NEW),
    ("enqueued", False, True, KeyUse.TAKE),
    ("running", False, True, KeyUse.REFUSE),
    ("failed", False, True, KeyUse.RERUN),
]


@pytest.mark.parametrize(("latest", "fresh", "now", "use"), KEY_CASES)
def test_the_unique_key_decision(latest: str | None, fresh: bool, now: bool, use: KeyUse) -> None:
    assert lifecycle.unique_key_use(latest, fresh=fresh, now=now) == use


@pytest.mark.parametrize(("latest", "fresh", "now", "use"), [c for c in KEY_CASES if not c[2]])
def test_each_store_applies_the_unique_key_decision(
    store: Store, latest: str | None, fresh: bool, now: bool, use: KeyUse
) -> None:
    def job(job_id: str) -> NewJob:
        return NewJob(job_id, "jobs_core:Echo", "default", 0, "[]", "{}", 3, unique_key="k", fresh=fresh)

    if latest is not None:
        store.enqueue([job("old")])
        rawsql.execute(store, "UPDATE onward_jobs SET state = ? WHERE id = ?", (latest, "old"))
    [got] = store.enqueue([job("new")])
    assert got == ("new" if use == KeyUse.NEW else "old")
    if use == KeyUse.RERUN:
        assert store.get("old").state == "enqueued"


def test_every_action_leads_along_a_transition() -> None:
    for state, actions in lifecycle.ACTIONS.items():
        for action in actions:
            target = State.ENQUEUED if action == Action.RETRY else State.DISCARDED
            assert target in TRANSITIONS[state], (state, action)
